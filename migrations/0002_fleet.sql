CREATE TYPE "public"."release_state" AS ENUM('draft', 'published', 'deprecated', 'revoked');--> statement-breakpoint
CREATE TYPE "public"."report_source" AS ENUM('heartbeat', 'receipt_code', 'receipt_file', 'manual');--> statement-breakpoint
CREATE TABLE "releases" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"version" text NOT NULL,
	"channel" text DEFAULT 'stable' NOT NULL,
	"notes" text DEFAULT '' NOT NULL,
	"state" "release_state" DEFAULT 'draft' NOT NULL,
	"published_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "site_reports" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"site_id" uuid NOT NULL,
	"source" "report_source" NOT NULL,
	"version" text,
	"release_id" uuid,
	"status" text NOT NULL,
	"health_checks" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"docker_version" text,
	"image_store" text,
	"compose_version" text,
	"disk_free_bytes" bigint,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"idempotency_key" text NOT NULL,
	"reported_at" timestamp (3) with time zone NOT NULL,
	"received_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"actor_user_id" uuid
);
--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "device_token_prefix" text;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "device_token_issued_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "receipt_key_sealed" text;--> statement-breakpoint
ALTER TABLE "releases" ADD CONSTRAINT "releases_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "site_reports" ADD CONSTRAINT "site_reports_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "site_reports" ADD CONSTRAINT "site_reports_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "site_reports" ADD CONSTRAINT "site_reports_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "site_reports" ADD CONSTRAINT "site_reports_actor_user_id_users_id_fk" FOREIGN KEY ("actor_user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "releases_org_version_uq" ON "releases" USING btree ("org_id","version");--> statement-breakpoint
CREATE UNIQUE INDEX "site_reports_idem_uq" ON "site_reports" USING btree ("site_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "site_reports_site_at_idx" ON "site_reports" USING btree ("site_id","received_at");--> statement-breakpoint
CREATE INDEX "sites_org_reported_at_idx" ON "sites" USING btree ("org_id","reported_at");--> statement-breakpoint
CREATE INDEX "sites_org_name_idx" ON "sites" USING btree ("org_id","name");--> statement-breakpoint
CREATE INDEX "sites_search_trgm_idx" ON "sites" USING gin (("code" || ' ' || "name") gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "sites_tags_idx" ON "sites" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "sites_org_version_idx" ON "sites" USING btree ("org_id","reported_version");