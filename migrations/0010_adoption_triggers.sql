-- Keeps fleet_adoption_deltas (the whole fleet's adoption as daily changes) in step with the version
-- runs, in the same transaction as every change: runs inserted or deleted (rebuilds, deleted sites)
-- and sites archived or restored. Statement-level triggers with transition tables, so a rebuild of a
-- thousand sites is one upsert. See docs/decisions.md ("Adoption over time").
UPDATE site_version_spans sp SET counted = (s.archived_at IS NULL) FROM sites s WHERE s.id = sp.site_id;
--> statement-breakpoint
INSERT INTO fleet_adoption_deltas (org_id, version, day, delta)
SELECT org_id, version, day, sum(delta)::int FROM (
  SELECT org_id, version, floor(extract(epoch FROM valid_from) / 86400)::int AS day, 1 AS delta FROM site_version_spans WHERE counted AND version IS NOT NULL
  UNION ALL
  SELECT org_id, version, floor(extract(epoch FROM valid_to) / 86400)::int, -1 FROM site_version_spans WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL
) c GROUP BY 1, 2, 3;
--> statement-breakpoint
CREATE FUNCTION fleet_adoption_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_adoption_deltas AS d (org_id, version, day, delta)
  SELECT org_id, version, day, sum(delta)::int FROM (
    SELECT org_id, version, floor(extract(epoch FROM valid_from) / 86400)::int AS day, 1 AS delta FROM new_rows WHERE counted AND version IS NOT NULL
    UNION ALL
    SELECT org_id, version, floor(extract(epoch FROM valid_to) / 86400)::int, -1 FROM new_rows WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL
  ) c GROUP BY 1, 2, 3
  ON CONFLICT (org_id, version, day) DO UPDATE SET delta = d.delta + excluded.delta;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION fleet_adoption_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_adoption_deltas AS d (org_id, version, day, delta)
  SELECT org_id, version, day, -sum(delta)::int FROM (
    SELECT org_id, version, floor(extract(epoch FROM valid_from) / 86400)::int AS day, 1 AS delta FROM old_rows WHERE counted AND version IS NOT NULL
    UNION ALL
    SELECT org_id, version, floor(extract(epoch FROM valid_to) / 86400)::int, -1 FROM old_rows WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL
  ) c
  -- An organisation being deleted takes its figures with it (below), not leftovers.
  WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = c.org_id)
  GROUP BY 1, 2, 3
  ON CONFLICT (org_id, version, day) DO UPDATE SET delta = d.delta + excluded.delta;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_spans_insert AFTER INSERT ON site_version_spans REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_adoption_add();
--> statement-breakpoint
CREATE TRIGGER fleet_spans_delete AFTER DELETE ON site_version_spans REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_adoption_remove();
--> statement-breakpoint
CREATE FUNCTION fleet_site_archived() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Out of (or back into) the fleet's adoption: the site's runs are written again with the new flag,
  -- and the triggers above do the arithmetic.
  WITH gone AS (DELETE FROM site_version_spans WHERE site_id = NEW.id RETURNING org_id, site_id, version, valid_from, valid_to)
  INSERT INTO site_version_spans (org_id, site_id, version, valid_from, valid_to, counted)
  SELECT org_id, site_id, version, valid_from, valid_to, NEW.archived_at IS NULL FROM gone;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_site_archive AFTER UPDATE OF archived_at ON sites FOR EACH ROW
  WHEN ((OLD.archived_at IS NULL) IS DISTINCT FROM (NEW.archived_at IS NULL)) EXECUTE FUNCTION fleet_site_archived();
--> statement-breakpoint
CREATE FUNCTION fleet_org_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM fleet_adoption_deltas WHERE org_id = OLD.id;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_org_delete AFTER DELETE ON organizations FOR EACH ROW EXECUTE FUNCTION fleet_org_deleted();
