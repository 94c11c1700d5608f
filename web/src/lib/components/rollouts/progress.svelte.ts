import { api, handleError, type AttentionItem, type Problem, type Rollout } from '$lib/api';

/** Now, as the ISO text the page shows: state keeps the string, never a mutable Date. */
const nowIso = () => new Date().toISOString();

/** The progress view's data: the rollout (waves, counts, history) and its attention list, refreshed together. */
export class RolloutProgress {
  rollout = $state<Rollout | null>(null);
  attention = $state<AttentionItem[]>([]);
  nextAfter = $state<string | null>(null);
  problem = $state<Problem | null>(null);
  refreshedAt = $state<string | null>(null);

  constructor(
    private readonly id: string,
    initial?: Rollout,
  ) {
    if (initial) this.rollout = initial;
  }

  /** Still changing: worth polling. */
  get live(): boolean {
    return !!this.rollout && ['scheduled', 'running', 'paused'].includes(this.rollout.state);
  }

  async refresh() {
    try {
      const [r, a] = await Promise.all([api.rollouts.get(this.id), api.rollouts.attention(this.id)]);
      this.rollout = r;
      this.attention = a.items;
      this.nextAfter = a.nextAfter;
      this.problem = null;
      this.refreshedAt = nowIso();
    } catch (err) {
      this.problem = handleError(err);
    }
  }

  async more() {
    if (!this.nextAfter) return;
    const a = await api.rollouts.attention(this.id, this.nextAfter);
    this.attention = [...this.attention, ...a.items];
    this.nextAfter = a.nextAfter;
  }
}
