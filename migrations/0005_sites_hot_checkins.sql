DROP INDEX "sites_org_reported_at_idx";--> statement-breakpoint
-- Written by hand (drizzle-kit has no table storage parameters): room on each page for the next
-- version of a row, so that a check-in's update stays on its page (HOT) and no index is touched.
ALTER TABLE "sites" SET (fillfactor = 85);
