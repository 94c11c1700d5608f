import { api, handleError, type Problem, type ReleaseFilter, type ReleaseSummary } from '$lib/api';

const uniqueSorted = (list: string[]) => [...new Set(list)].sort();

/** The releases matching one filter (the API answers them all at once, newest version first). */
export class ReleaseList {
  items = $state<ReleaseSummary[]>([]);
  loading = $state(false);
  loaded = $state(false);
  problem = $state<Problem | null>(null);
  /** Every channel seen so far, for the filter picker (a filtered answer alone would hide the others). */
  channels = $state<string[]>(['stable']);

  // Only the newest request may land: a slow answer must not overwrite a filter chosen since.
  #generation = 0;

  async show(filter: ReleaseFilter): Promise<void> {
    const generation = ++this.#generation;
    this.loading = true;
    this.problem = null;
    try {
      const { items } = await api.releases.list(filter);
      if (generation !== this.#generation) return;
      this.items = items;
      this.channels = uniqueSorted([...this.channels, ...items.map((r) => r.channel)]);
      this.loaded = true;
    } catch (err) {
      if (generation === this.#generation) this.problem = handleError(err);
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  }
}
