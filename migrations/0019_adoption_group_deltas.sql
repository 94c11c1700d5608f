-- Adoption over time filtered like the site list (region, district, tag, connectivity) from a
-- maintained rollup: fleet_adoption_deltas kept apart per group of sites (region, district,
-- connectivity, tag set), in the same transaction as every change. The runs carry their site's
-- current group, so the triggers on site_version_spans need no join, and a deleted site's runs
-- (which go after the site row) still know what to take away. A site that changes group, is
-- archived or restored has its runs written again, and the triggers do the arithmetic: its whole
-- history moves with it. The same changes are also kept per single filter value (a region, a
-- district, a tag, a connectivity: fleet_adoption_facet_deltas), a few thousand rows, for the
-- commonest filtered view. See docs/decisions.md ("Adoption over time, filtered").
CREATE TABLE "fleet_adoption_group_deltas" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "fleet_adoption_group_deltas_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"org_id" uuid NOT NULL,
	"region" text,
	"district" text,
	"connectivity" "connectivity" NOT NULL,
	"tags" text[] NOT NULL,
	"version" text NOT NULL,
	"day" integer NOT NULL,
	"delta" integer NOT NULL,
	CONSTRAINT "fleet_adoption_group_deltas_key" UNIQUE NULLS NOT DISTINCT("org_id","region","district","connectivity","tags","version","day")
);
--> statement-breakpoint
CREATE TABLE "fleet_adoption_facet_deltas" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "fleet_adoption_facet_deltas_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"org_id" uuid NOT NULL,
	"facet" text NOT NULL,
	"value" text NOT NULL,
	"version" text NOT NULL,
	"day" integer NOT NULL,
	"delta" integer NOT NULL,
	CONSTRAINT "fleet_adoption_facet_deltas_key" UNIQUE("org_id","facet","value","version","day")
);
--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD COLUMN "region" text;--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD COLUMN "district" text;--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD COLUMN "connectivity" "connectivity";--> statement-breakpoint
ALTER TABLE "site_version_spans" ADD COLUMN "tags" text[];--> statement-breakpoint
UPDATE site_version_spans sp SET region = s.region, district = s.district, connectivity = s.connectivity, tags = s.tags
FROM sites s WHERE s.id = sp.site_id;
--> statement-breakpoint
ALTER TABLE "site_version_spans" ALTER COLUMN "connectivity" SET NOT NULL, ALTER COLUMN "tags" SET NOT NULL;
--> statement-breakpoint
INSERT INTO fleet_adoption_group_deltas (org_id, region, district, connectivity, tags, version, day, delta)
SELECT org_id, region, district, connectivity, tags, version, day, sum(delta)::int FROM (
  SELECT org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_from) / 86400)::int AS day, 1 AS delta FROM site_version_spans WHERE counted AND version IS NOT NULL
  UNION ALL
  SELECT org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_to) / 86400)::int, -1 FROM site_version_spans WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL
) c GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(delta) <> 0;
--> statement-breakpoint
INSERT INTO fleet_adoption_facet_deltas (org_id, facet, value, version, day, delta)
SELECT org_id, f.facet, f.value, version, day, sum(delta)::int FROM fleet_adoption_group_deltas g
CROSS JOIN LATERAL (
  SELECT 'region', g.region WHERE g.region IS NOT NULL
  UNION ALL SELECT 'district', g.district WHERE g.district IS NOT NULL
  UNION ALL SELECT 'connectivity', g.connectivity::text
  UNION ALL SELECT 'tag', t FROM (SELECT DISTINCT unnest(g.tags) AS t) u
) f(facet, value)
GROUP BY 1, 2, 3, 4, 5 HAVING sum(delta) <> 0;
--> statement-breakpoint
CREATE TYPE fleet_adoption_change AS (org_id uuid, region text, district text, connectivity connectivity, tags text[], version text, day integer, d integer);
--> statement-breakpoint
CREATE FUNCTION fleet_adoption_groups_apply(changes fleet_adoption_change[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  emptied bigint[];
  emptied_facets bigint[];
BEGIN
  WITH ch AS (SELECT * FROM unnest(changes)), up AS (
    INSERT INTO fleet_adoption_group_deltas AS g (org_id, region, district, connectivity, tags, version, day, delta)
    SELECT org_id, region, district, connectivity, tags, version, day, sum(d)::int FROM ch GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT ON CONSTRAINT fleet_adoption_group_deltas_key DO UPDATE SET delta = g.delta + excluded.delta
    RETURNING g.id, g.delta
  ), upf AS (
    -- Each change once under each of its values: its region, district, connectivity and tags.
    INSERT INTO fleet_adoption_facet_deltas AS x (org_id, facet, value, version, day, delta)
    SELECT org_id, f.facet, f.value, version, day, sum(d)::int FROM ch
    CROSS JOIN LATERAL (
      SELECT 'region', ch.region WHERE ch.region IS NOT NULL
      UNION ALL SELECT 'district', ch.district WHERE ch.district IS NOT NULL
      UNION ALL SELECT 'connectivity', ch.connectivity::text
      UNION ALL SELECT 'tag', t FROM (SELECT DISTINCT unnest(ch.tags) AS t) u
    ) f(facet, value)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ON CONSTRAINT fleet_adoption_facet_deltas_key DO UPDATE SET delta = x.delta + excluded.delta
    RETURNING x.id, x.delta
  )
  SELECT (SELECT array_agg(id) FROM up WHERE delta = 0), (SELECT array_agg(id) FROM upf WHERE delta = 0)
  INTO emptied, emptied_facets;
  IF emptied IS NOT NULL THEN
    DELETE FROM fleet_adoption_group_deltas WHERE id = ANY (emptied) AND delta = 0;
  END IF;
  IF emptied_facets IS NOT NULL THEN
    DELETE FROM fleet_adoption_facet_deltas WHERE id = ANY (emptied_facets) AND delta = 0;
  END IF;
END $$;
--> statement-breakpoint
CREATE FUNCTION fleet_adoption_groups_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- +1 where a counted run starts and −1 where it ends (the reverse for runs deleted).
  IF TG_OP = 'INSERT' THEN
    PERFORM fleet_adoption_groups_apply(ARRAY(
      SELECT ROW(org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_from) / 86400)::int, 1)::fleet_adoption_change FROM new_rows WHERE counted AND version IS NOT NULL
      UNION ALL
      SELECT ROW(org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_to) / 86400)::int, -1)::fleet_adoption_change FROM new_rows WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL));
  ELSE
    -- An organisation being deleted takes its figures with it (below), not leftovers.
    PERFORM fleet_adoption_groups_apply(ARRAY(
      SELECT ROW(org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_from) / 86400)::int, -1)::fleet_adoption_change FROM old_rows r
      WHERE counted AND version IS NOT NULL AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = r.org_id)
      UNION ALL
      SELECT ROW(org_id, region, district, connectivity, tags, version, floor(extract(epoch FROM valid_to) / 86400)::int, 1)::fleet_adoption_change FROM old_rows r
      WHERE counted AND version IS NOT NULL AND valid_to IS NOT NULL AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = r.org_id)));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_spans_groups_insert AFTER INSERT ON site_version_spans REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_adoption_groups_change();
--> statement-breakpoint
CREATE TRIGGER fleet_spans_groups_delete AFTER DELETE ON site_version_spans REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_adoption_groups_change();
--> statement-breakpoint
-- Replaces the archive trigger of migration 0010: the runs are written again (with the flag and the
-- group the site has now) when the site is archived or restored and when it changes group.
DROP TRIGGER fleet_site_archive ON sites;
--> statement-breakpoint
DROP FUNCTION fleet_site_archived();
--> statement-breakpoint
CREATE FUNCTION fleet_site_respan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH gone AS (DELETE FROM site_version_spans WHERE site_id = NEW.id RETURNING org_id, site_id, version, valid_from, valid_to)
  INSERT INTO site_version_spans (org_id, site_id, version, valid_from, valid_to, counted, region, district, connectivity, tags)
  SELECT org_id, site_id, version, valid_from, valid_to, NEW.archived_at IS NULL, NEW.region, NEW.district, NEW.connectivity, NEW.tags FROM gone;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_site_respan AFTER UPDATE OF archived_at, region, district, connectivity, tags ON sites FOR EACH ROW
  WHEN ((OLD.archived_at IS NULL) IS DISTINCT FROM (NEW.archived_at IS NULL)
    OR OLD.region IS DISTINCT FROM NEW.region OR OLD.district IS DISTINCT FROM NEW.district
    OR OLD.connectivity IS DISTINCT FROM NEW.connectivity OR OLD.tags IS DISTINCT FROM NEW.tags)
  EXECUTE FUNCTION fleet_site_respan();
--> statement-breakpoint
CREATE FUNCTION fleet_org_groups_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM fleet_adoption_group_deltas WHERE org_id = OLD.id;
  DELETE FROM fleet_adoption_facet_deltas WHERE org_id = OLD.id;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_org_groups_delete AFTER DELETE ON organizations FOR EACH ROW EXECUTE FUNCTION fleet_org_groups_deleted();
