import { api, type Site, type SiteListQuery } from '$lib/api';
import { PagedList } from '$lib/paged.svelte';

/** The sites matching one query: pages of rows with "load more", and how many match in all. */
export class SiteList {
  readonly pages: PagedList<Site>;
  total = $state(0);
  totalIsExact = $state(true);

  #query: SiteListQuery = {};

  constructor(pageSize = 50) {
    this.pages = new PagedList<Site>(async (cursor) => {
      const query = this.#query;
      const r = await api.sites.list({ ...query, limit: pageSize, cursor });
      // Every page carries the count; the first page of the current query sets it.
      if (!cursor && query === this.#query) {
        this.total = r.total;
        this.totalIsExact = r.totalIsExact;
      }
      return r;
    });
  }

  /** Shows the first page of a new query (filters or sort changed). */
  show(query: SiteListQuery): Promise<void> {
    this.#query = query;
    return this.pages.reload();
  }

  reload(): Promise<void> {
    return this.pages.reload();
  }
}
