import { handleError, type Problem } from '$lib/api';

export interface PageOf<T> { items: T[]; nextCursor: string | null }

/** A cursor-paginated list: the first page, "load more", and local edits after writes. */
export class PagedList<T extends { id: string }> {
  items = $state<T[]>([]);
  nextCursor = $state<string | null>(null);
  loading = $state(false);
  loaded = $state(false);
  problem = $state<Problem | null>(null);

  readonly #fetchPage: (cursor?: string) => Promise<PageOf<T>>;
  // Only the newest request may land: a slow first page must not overwrite a reload made since.
  #generation = 0;

  constructor(fetchPage: (cursor?: string) => Promise<PageOf<T>>) {
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
