import { handleError, type Problem } from '$lib/api';

export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

/** `rows` without those whose id is among `fresh`'s (a plain lookup, never state, hence module-private). */
function withoutIdsOf<T extends { id: string }>(rows: T[], fresh: T[]): T[] {
  const ids = new Set(fresh.map((i) => i.id));
  return rows.filter((i) => !ids.has(i.id));
}

/** A cursor-paginated list: the first page, "load more", and local edits after writes. */
export class PagedList<T extends { id: string }> {
  items = $state<T[]>([]);
  nextCursor = $state<string | null>(null);
  loading = $state(false);
  loaded = $state(false);
  problem = $state<Problem | null>(null);

  readonly #fetchPage: (cursor?: string, limit?: number) => Promise<PageOf<T>>;
  // Only the newest request may land: a slow first page must not overwrite a reload made since.
  #generation = 0;

  /** `limit`, when given, asks for that many rows instead of the usual page size (see `refresh`). */
  constructor(fetchPage: (cursor?: string, limit?: number) => Promise<PageOf<T>>) {
    this.#fetchPage = fetchPage;
  }

  get hasMore(): boolean {
    return this.nextCursor !== null;
  }

  reload(): Promise<void> {
    return this.#load(undefined);
  }

  more(): Promise<void> {
    return this.nextCursor ? this.#load(this.nextCursor) : Promise.resolve();
  }

  /**
   * Asks again for the rows on screen, in one request of as many rows (up to `maxRows`), for lists
   * whose rows change by themselves (bundles being built). Quiet: the rows stay while it asks,
   * pages loaded with "more" are kept, and a failed refresh leaves them as they were.
   */
  async refresh(maxRows = 500): Promise<void> {
    if (!this.loaded) return this.reload();
    // A load under way answers with fresh rows anyway (and must stay the one that ends `loading`).
    if (this.loading) return;
    const generation = ++this.#generation;
    const shown = this.items.length;
    const count = Math.min(Math.max(shown, 1), maxRows);
    try {
      const page = await this.#fetchPage(undefined, count);
      if (generation !== this.#generation) return;
      // Rows beyond what one request can carry stay as they were, and so does the cursor after them.
      const rest = shown > count ? withoutIdsOf(this.items.slice(count), page.items) : [];
      this.items = [...page.items, ...rest];
      if (shown <= count) this.nextCursor = page.nextCursor;
      this.problem = null;
    } catch (err) {
      if (generation === this.#generation) this.problem = handleError(err);
    }
  }

  prepend(item: T) {
    this.items = [item, ...this.items.filter((i) => i.id !== item.id)];
  }

  append(item: T) {
    this.items = [...this.items.filter((i) => i.id !== item.id), item];
  }

  replace(item: T) {
    this.items = this.items.map((i) => (i.id === item.id ? item : i));
  }

  remove(id: string) {
    this.items = this.items.filter((i) => i.id !== id);
  }

  async #load(cursor: string | undefined) {
    const generation = ++this.#generation;
    this.loading = true;
    this.problem = null;
    try {
      const page = await this.#fetchPage(cursor);
      if (generation !== this.#generation) return;
      this.items = cursor ? [...this.items, ...page.items] : page.items;
      this.nextCursor = page.nextCursor;
      this.loaded = true;
    } catch (err) {
      if (generation === this.#generation) this.problem = handleError(err);
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  }
}
