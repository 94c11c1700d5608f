-- Keeps fleet_site_counts (the fleet's current state, counted) in step with sites, in the same
-- transaction as every change: sites created, edited, reporting, archived, restored and deleted.
-- Statement-level triggers with transition tables, so an import or a rollout of a thousand sites is
-- one upsert, and a heartbeat that changes no counted value (the same day, the same version) writes
-- nothing: its old and new rows cancel out. See docs/decisions.md ("Fleet dashboard: current-state rollup").
CREATE FUNCTION fleet_compose_drift(p_site uuid, p_release uuid, p_sha text) RETURNS boolean LANGUAGE sql STABLE AS $$
  -- layerDrift('compose') of services/fleet/drift.ts, for one site.
  SELECT coalesce(p_sha IS NOT NULL AND p_sha <> (
    SELECT f->>'sha256' FROM bundles b CROSS JOIN LATERAL jsonb_array_elements(b.manifest->'files') f
    WHERE b.site_id = p_site AND b.release_id = p_release AND b.state = 'ready'
      AND f->>'path' = 'compose/docker-compose.yml' ORDER BY b.ready_at DESC NULLS LAST LIMIT 1), false)
$$;
--> statement-breakpoint
UPDATE sites SET compose_drift = true WHERE fleet_compose_drift(id, reported_release_id, reported_compose_sha256);
--> statement-breakpoint
INSERT INTO fleet_site_counts (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, n)
SELECT s.org_id, s.region, s.district, s.connectivity, s.tags, s.reported_version, s.reported_release_id, coalesce(s.reported_status, '') IN ('failed', 'rolled_back'), s.reported_day, s.reported_content_version, s.reported_scripts_version, s.compose_drift, s.target_release_id, count(*)::int FROM sites s WHERE s.archived_at IS NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13;
--> statement-breakpoint
CREATE FUNCTION fleet_site_compose_drift() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.compose_drift := fleet_compose_drift(NEW.id, NEW.reported_release_id, NEW.reported_compose_sha256);
  RETURN NEW;
END $$;
--> statement-breakpoint
-- Only when the reported compose hash or release changes: a heartbeat does not call it.
CREATE TRIGGER fleet_site_compose_insert BEFORE INSERT ON sites FOR EACH ROW
  WHEN (NEW.reported_compose_sha256 IS NOT NULL OR NEW.compose_drift) EXECUTE FUNCTION fleet_site_compose_drift();
--> statement-breakpoint
CREATE TRIGGER fleet_site_compose_update BEFORE UPDATE ON sites FOR EACH ROW
  WHEN (OLD.reported_compose_sha256 IS DISTINCT FROM NEW.reported_compose_sha256
    OR OLD.reported_release_id IS DISTINCT FROM NEW.reported_release_id) EXECUTE FUNCTION fleet_site_compose_drift();
--> statement-breakpoint
CREATE FUNCTION fleet_bundle_compose_drift() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A bundle that becomes ready (or goes) changes what the site's compose file should be.
  IF TG_OP <> 'INSERT' THEN
    UPDATE sites SET compose_drift = NOT compose_drift WHERE id = OLD.site_id
      AND compose_drift <> fleet_compose_drift(id, reported_release_id, reported_compose_sha256);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    UPDATE sites SET compose_drift = NOT compose_drift WHERE id = NEW.site_id
      AND compose_drift <> fleet_compose_drift(id, reported_release_id, reported_compose_sha256);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_bundle_compose AFTER INSERT OR DELETE OR UPDATE OF site_id, release_id, state, manifest, ready_at
  ON bundles FOR EACH ROW EXECUTE FUNCTION fleet_bundle_compose_drift();
--> statement-breakpoint
CREATE FUNCTION fleet_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  emptied bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH ch (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, d) AS (
      SELECT r.org_id, r.region, r.district, r.connectivity, r.tags, r.reported_version, r.reported_release_id, coalesce(r.reported_status, '') IN ('failed', 'rolled_back'), r.reported_day, r.reported_content_version, r.reported_scripts_version, r.compose_drift, r.target_release_id, 1 FROM new_rows r WHERE r.archived_at IS NULL
    ), up AS (
      INSERT INTO fleet_site_counts AS c (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, n)
      SELECT org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, sum(d)::int FROM ch GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
      ON CONFLICT ON CONSTRAINT fleet_site_counts_key DO UPDATE SET n = c.n + excluded.n
      RETURNING c.id, c.n
    )
    SELECT array_agg(id) INTO emptied FROM up WHERE n = 0;
  ELSIF TG_OP = 'UPDATE' THEN
    WITH ch (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, d) AS (
      SELECT r.org_id, r.region, r.district, r.connectivity, r.tags, r.reported_version, r.reported_release_id, coalesce(r.reported_status, '') IN ('failed', 'rolled_back'), r.reported_day, r.reported_content_version, r.reported_scripts_version, r.compose_drift, r.target_release_id, -1 FROM old_rows r WHERE r.archived_at IS NULL
      UNION ALL SELECT r.org_id, r.region, r.district, r.connectivity, r.tags, r.reported_version, r.reported_release_id, coalesce(r.reported_status, '') IN ('failed', 'rolled_back'), r.reported_day, r.reported_content_version, r.reported_scripts_version, r.compose_drift, r.target_release_id, 1 FROM new_rows r WHERE r.archived_at IS NULL
    ), up AS (
      INSERT INTO fleet_site_counts AS c (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, n)
      SELECT org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, sum(d)::int FROM ch GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
      ON CONFLICT ON CONSTRAINT fleet_site_counts_key DO UPDATE SET n = c.n + excluded.n
      RETURNING c.id, c.n
    )
    SELECT array_agg(id) INTO emptied FROM up WHERE n = 0;
  ELSE
    -- An organisation being deleted takes its counts with it (below), not leftovers.
    WITH ch (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, d) AS (
      SELECT r.org_id, r.region, r.district, r.connectivity, r.tags, r.reported_version, r.reported_release_id, coalesce(r.reported_status, '') IN ('failed', 'rolled_back'), r.reported_day, r.reported_content_version, r.reported_scripts_version, r.compose_drift, r.target_release_id, -1 FROM old_rows r WHERE r.archived_at IS NULL
        AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = r.org_id)
    ), up AS (
      INSERT INTO fleet_site_counts AS c (org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, n)
      SELECT org_id, region, district, connectivity, tags, reported_version, reported_release_id, reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id, sum(d)::int FROM ch GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
      ON CONFLICT ON CONSTRAINT fleet_site_counts_key DO UPDATE SET n = c.n + excluded.n
      RETURNING c.id, c.n
    )
    SELECT array_agg(id) INTO emptied FROM up WHERE n = 0;
  END IF;
  IF emptied IS NOT NULL THEN
    DELETE FROM fleet_site_counts WHERE id = ANY (emptied) AND n = 0;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_counts_insert AFTER INSERT ON sites REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_change();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_update AFTER UPDATE ON sites REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_change();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_delete AFTER DELETE ON sites REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_change();
--> statement-breakpoint
CREATE FUNCTION fleet_org_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM fleet_site_counts WHERE org_id = OLD.id;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_org_counts_delete AFTER DELETE ON organizations FOR EACH ROW EXECUTE FUNCTION fleet_org_counts_deleted();
