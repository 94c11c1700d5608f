CREATE TABLE "bundle_downloads" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"bundle_id" uuid NOT NULL,
	"site_id" uuid NOT NULL,
	"user_id" uuid,
	"token_id" uuid,
	"kind" text NOT NULL,
	"range_start" bigint,
	"range_end" bigint,
	"bytes" bigint DEFAULT 0 NOT NULL,
	"complete" boolean DEFAULT false NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bundle_jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"target_id" uuid NOT NULL,
	"state" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 5 NOT NULL,
	"run_after" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"locked_by" text,
	"locked_until" timestamp (3) with time zone,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bundles" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"site_id" uuid NOT NULL,
	"release_id" uuid NOT NULL,
	"from_release_id" uuid,
	"image_archive_id" uuid,
	"state" text DEFAULT 'queued' NOT NULL,
	"delta" boolean DEFAULT false NOT NULL,
	"site_part_sha256" text,
	"site_part_size" integer,
	"size" bigint,
	"full_size" bigint,
	"manifest" jsonb,
	"key_fingerprint" text,
	"etag" text,
	"error_code" text,
	"error" text,
	"requested_by" uuid,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp (3) with time zone,
	"expires_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE TABLE "image_archives" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"release_id" uuid NOT NULL,
	"from_release_id" uuid,
	"state" text DEFAULT 'queued' NOT NULL,
	"sha256" text,
	"size" bigint,
	"tar_size" bigint,
	"omitted_layers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"error_code" text,
	"error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp (3) with time zone,
	CONSTRAINT "image_archives_release_from_uq" UNIQUE NULLS NOT DISTINCT("release_id","from_release_id")
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" uuid NOT NULL,
	"algorithm" text DEFAULT 'ecdsa-p256-sha256' NOT NULL,
	"fingerprint" text NOT NULL,
	"public_key_pem" text NOT NULL,
	"private_key_sealed" text NOT NULL,
	"created_by" uuid,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp (3) with time zone
);
--> statement-breakpoint
ALTER TABLE "bundle_downloads" ADD CONSTRAINT "bundle_downloads_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundle_downloads" ADD CONSTRAINT "bundle_downloads_bundle_id_bundles_id_fk" FOREIGN KEY ("bundle_id") REFERENCES "public"."bundles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundle_downloads" ADD CONSTRAINT "bundle_downloads_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundle_downloads" ADD CONSTRAINT "bundle_downloads_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundle_jobs" ADD CONSTRAINT "bundle_jobs_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_from_release_id_releases_id_fk" FOREIGN KEY ("from_release_id") REFERENCES "public"."releases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_image_archive_id_image_archives_id_fk" FOREIGN KEY ("image_archive_id") REFERENCES "public"."image_archives"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bundles" ADD CONSTRAINT "bundles_requested_by_users_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_archives" ADD CONSTRAINT "image_archives_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_archives" ADD CONSTRAINT "image_archives_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "image_archives" ADD CONSTRAINT "image_archives_from_release_id_releases_id_fk" FOREIGN KEY ("from_release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "signing_keys" ADD CONSTRAINT "signing_keys_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "signing_keys" ADD CONSTRAINT "signing_keys_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "bundle_downloads_bundle_idx" ON "bundle_downloads" USING btree ("bundle_id","created_at");--> statement-breakpoint
CREATE INDEX "bundle_downloads_org_site_idx" ON "bundle_downloads" USING btree ("org_id","site_id");--> statement-breakpoint
CREATE INDEX "bundle_jobs_ready_idx" ON "bundle_jobs" USING btree ("run_after") WHERE state IN ('queued', 'running');--> statement-breakpoint
CREATE UNIQUE INDEX "bundle_jobs_target_open_uq" ON "bundle_jobs" USING btree ("kind","target_id") WHERE state IN ('queued', 'running');--> statement-breakpoint
CREATE INDEX "bundles_org_release_idx" ON "bundles" USING btree ("org_id","release_id","created_at");--> statement-breakpoint
CREATE INDEX "bundles_org_site_idx" ON "bundles" USING btree ("org_id","site_id","created_at");--> statement-breakpoint
CREATE INDEX "bundles_archive_idx" ON "bundles" USING btree ("image_archive_id");--> statement-breakpoint
CREATE UNIQUE INDEX "signing_keys_org_active_uq" ON "signing_keys" USING btree ("org_id") WHERE retired_at IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "signing_keys_org_fingerprint_uq" ON "signing_keys" USING btree ("org_id","fingerprint");