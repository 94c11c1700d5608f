import { api, type Bundle, type BundleQuery } from '$lib/api';
import { PagedList } from '$lib/paged.svelte';

/** Bundles matching one query (a release, a site, a state), in pages; their states change as the workers build them. */
export class BundleList {
  readonly pages: PagedList<Bundle>;
  /** Some row is still queued or being built: worth asking again soon. */
  readonly building = $derived.by(() =>
    this.pages.items.some((b) => b.state === 'queued' || b.state === 'building'),
  );

  #query: BundleQuery = {};

  constructor(pageSize = 25) {
    this.pages = new PagedList<Bundle>((cursor, limit) =>
      api.bundles.list({ ...this.#query, cursor, limit: limit ?? pageSize }),
    );
  }

  /** Shows the first page of a new query. */
  show(query: BundleQuery): Promise<void> {
    this.#query = query;
    return this.pages.reload();
  }

  /** The rows on screen again, quietly (see `PagedList.refresh`). */
  refresh(): Promise<void> {
    return this.pages.refresh();
  }
}
