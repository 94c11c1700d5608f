CREATE TABLE "site_version_spans" (
	"org_id" uuid NOT NULL,
	"site_id" uuid NOT NULL,
	"version" text,
	"valid_from" timestamp (3) with time zone NOT NULL,
	"valid_to" timestamp (3) with time zone
);
--> statement-breakpoint
ALTER TABLE "site_reports" ADD COLUMN "content_package_version" text;--> statement-breakpoint
ALTER TABLE "site_reports" ADD COLUMN "edge_scripts_version" text;--> statement-breakpoint
ALTER TABLE "site_reports" ADD COLUMN "compose_sha256" text;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "reported_content_version" text;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "reported_scripts_version" text;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "reported_compose_sha256" text;--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD CONSTRAINT "site_version_spans_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD CONSTRAINT "site_version_spans_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "site_version_spans_org_idx" ON "site_version_spans" USING btree ("org_id","valid_from");--> statement-breakpoint
CREATE INDEX "site_version_spans_site_idx" ON "site_version_spans" USING btree ("site_id");