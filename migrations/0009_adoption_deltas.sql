CREATE TABLE "fleet_adoption_deltas" (
	"org_id" uuid NOT NULL,
	"version" text NOT NULL,
	"day" integer NOT NULL,
	"delta" integer NOT NULL,
	CONSTRAINT "fleet_adoption_deltas_org_id_version_day_pk" PRIMARY KEY("org_id","version","day")
);
--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD COLUMN "counted" boolean DEFAULT false NOT NULL;