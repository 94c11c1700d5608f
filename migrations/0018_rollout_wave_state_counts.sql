CREATE TABLE "rollout_wave_state_counts" (
	"rollout_id" uuid NOT NULL,
	"wave_id" uuid NOT NULL,
	"state" text NOT NULL,
	"healthy" boolean NOT NULL,
	"n" integer NOT NULL,
	CONSTRAINT "rollout_wave_state_counts_rollout_id_wave_id_state_healthy_pk" PRIMARY KEY("rollout_id","wave_id","state","healthy")
);
--> statement-breakpoint
ALTER TABLE "rollout_wave_state_counts" ADD CONSTRAINT "rollout_wave_state_counts_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Keeps rollout_wave_state_counts equal to counting rollout_targets by rollout, wave, state and health,
-- in the same transaction as every change: targets created, moved by check-ins, receipts, the scheduler
-- and people (retry, exclude), and deleted with their rollout or site. Statement-level triggers with
-- transition tables, so creating a 100,000-site rollout is one grouped upsert, and a check-in group
-- moving targets is one more: its old and new rows are summed per key (−1 and +1), and keys that do
-- not change (a heartbeat that moves nothing, `active` flipped on cancel) cancel out and write nothing.
-- See docs/decisions.md ("Rollout progress: counts kept per wave and state").
INSERT INTO rollout_wave_state_counts (rollout_id, wave_id, state, healthy, n)
SELECT rollout_id, wave_id, state, healthy, count(*)::int FROM rollout_targets GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
CREATE FUNCTION rollout_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  emptied uuid[];
BEGIN
  -- Keys in a fixed order, so two check-in groups moving the same counts take their row locks alike
  -- (no deadlock); rows that reach zero are deleted after the upsert (a statement cannot touch a row twice).
  IF TG_OP = 'INSERT' THEN
    INSERT INTO rollout_wave_state_counts AS c (rollout_id, wave_id, state, healthy, n)
    SELECT rollout_id, wave_id, state, healthy, count(*)::int FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (rollout_id, wave_id, state, healthy) DO UPDATE SET n = c.n + excluded.n;
  ELSIF TG_OP = 'UPDATE' THEN
    WITH ch (rollout_id, wave_id, state, healthy, d) AS (
      SELECT rollout_id, wave_id, state, healthy, -1 FROM old_rows
      UNION ALL SELECT rollout_id, wave_id, state, healthy, 1 FROM new_rows
    ), up AS (
      INSERT INTO rollout_wave_state_counts AS c (rollout_id, wave_id, state, healthy, n)
      SELECT rollout_id, wave_id, state, healthy, sum(d)::int FROM ch GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4
      ON CONFLICT (rollout_id, wave_id, state, healthy) DO UPDATE SET n = c.n + excluded.n
      RETURNING c.rollout_id, c.n
    )
    SELECT array_agg(DISTINCT rollout_id) INTO emptied FROM up WHERE n = 0;
  ELSE
    -- Targets deleted with their rollout leave nothing to count: the rollout's rows went with it (cascade).
    WITH up AS (
      INSERT INTO rollout_wave_state_counts AS c (rollout_id, wave_id, state, healthy, n)
      SELECT r.rollout_id, r.wave_id, r.state, r.healthy, -count(*)::int FROM old_rows r
      WHERE EXISTS (SELECT 1 FROM rollouts ro WHERE ro.id = r.rollout_id)
      GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
      ON CONFLICT (rollout_id, wave_id, state, healthy) DO UPDATE SET n = c.n + excluded.n
      RETURNING c.rollout_id, c.n
    )
    SELECT array_agg(DISTINCT rollout_id) INTO emptied FROM up WHERE n = 0;
  END IF;
  IF emptied IS NOT NULL THEN
    DELETE FROM rollout_wave_state_counts WHERE rollout_id = ANY (emptied) AND n = 0;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER rollout_counts_insert AFTER INSERT ON rollout_targets REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION rollout_counts_change();
--> statement-breakpoint
CREATE TRIGGER rollout_counts_update AFTER UPDATE ON rollout_targets REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION rollout_counts_change();
--> statement-breakpoint
CREATE TRIGGER rollout_counts_delete AFTER DELETE ON rollout_targets REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION rollout_counts_change();
