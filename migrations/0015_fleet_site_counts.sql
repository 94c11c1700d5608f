CREATE TABLE "fleet_site_counts" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "fleet_site_counts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"org_id" uuid NOT NULL,
	"region" text,
	"district" text,
	"connectivity" "connectivity" NOT NULL,
	"tags" text[] NOT NULL,
	"reported_version" text,
	"reported_release_id" uuid,
	"reported_failed" boolean NOT NULL,
	"reported_day" date,
	"content_version" text,
	"scripts_version" text,
	"compose_drift" boolean NOT NULL,
	"target_release_id" uuid,
	"n" integer NOT NULL,
	CONSTRAINT "fleet_site_counts_key" UNIQUE NULLS NOT DISTINCT("org_id","region","district","connectivity","tags","reported_version","reported_release_id","reported_failed","reported_day","content_version","scripts_version","compose_drift","target_release_id")
);
--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "reported_day" date GENERATED ALWAYS AS (((reported_at at time zone 'UTC')::date)) STORED;--> statement-breakpoint
ALTER TABLE "sites" ADD COLUMN "compose_drift" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "sites_org_reported_day_idx" ON "sites" USING btree ("org_id","reported_day");