ALTER TABLE "rollout_targets" DROP CONSTRAINT "rollout_targets_org_id_organizations_id_fk";
--> statement-breakpoint
ALTER TABLE "rollout_targets" DROP CONSTRAINT "rollout_targets_wave_id_rollout_waves_id_fk";
