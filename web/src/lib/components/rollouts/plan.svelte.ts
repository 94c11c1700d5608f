import type { RolloutPlan, WaveSelector } from '$lib/api';
import { fromLocalInput, splitList, toLocalInput } from './labels';

export type Limit = 'all' | 'share' | 'count';

/** One wave as the form holds it: text fields, turned into the API's selector by `toSelector`. */
export class WaveDraft {
  name = $state('');
  all = $state(false);
  regions = $state('');
  districts = $state('');
  tags = $state('');
  siteCodes = $state('');
  excludeCodes = $state('');
  limit = $state<Limit>('all');
  share = $state(10);
  count = $state(10);
  startsAt = $state('');
  deadlineAt = $state('');

  constructor(
    init: Partial<
      Pick<
        WaveDraft,
        'name' | 'all' | 'regions' | 'tags' | 'limit' | 'share' | 'count' | 'startsAt' | 'deadlineAt'
      >
    > = {},
  ) {
    Object.assign(this, init);
  }

  get empty(): boolean {
    return (
      !this.all &&
      !this.regions.trim() &&
      !this.districts.trim() &&
      !this.tags.trim() &&
      !this.siteCodes.trim()
    );
  }

  toSelector(): WaveSelector {
    const list = (text: string) => {
      const l = splitList(text);
      return l.length ? l : undefined;
    };
    return {
      ...(this.all ? { all: true } : {}),
      ...(list(this.regions) ? { regions: list(this.regions) } : {}),
      ...(list(this.districts) ? { districts: list(this.districts) } : {}),
      ...(list(this.tags) ? { tags: list(this.tags) } : {}),
      ...(list(this.siteCodes) ? { siteCodes: list(this.siteCodes) } : {}),
      ...(list(this.excludeCodes) ? { excludeCodes: list(this.excludeCodes) } : {}),
      ...(this.limit === 'share' ? { share: Number(this.share) } : {}),
      ...(this.limit === 'count' ? { count: Number(this.count) } : {}),
    };
  }
}

const HOUR = 3_600_000;

/** The whole plan: release, waves, policy. Starts with the usual pilot → region → everyone shape. */
export class PlanDraft {
  name = $state('');
  releaseId = $state('');
  seed = $state('');
  successPercent = $state(95);
  failurePercent = $state(10);
  autoAdvance = $state(true);
  soakMinutes = $state(60);
  bundleLeadHours = $state(72);
  buildBundles = $state(true);
  waves = $state<WaveDraft[]>([]);

  /** `names`: the three first waves' names, in the person's language. */
  constructor(names: [string, string, string], now: Date | number = Date.now()) {
    const at = (h: number) => toLocalInput(Math.ceil((Number(now) + h * HOUR) / HOUR) * HOUR);
    this.waves = [
      new WaveDraft({ name: names[0], tags: 'pilot', startsAt: at(24), deadlineAt: at(24 + 72) }),
      new WaveDraft({ name: names[1], regions: '', startsAt: at(24 * 4), deadlineAt: at(24 * 11) }),
      new WaveDraft({ name: names[2], all: true, startsAt: at(24 * 12), deadlineAt: at(24 * 26) }),
    ];
  }

  addWave() {
    const last = this.waves.at(-1);
    // Epoch milliseconds, not Dates: nothing here is reactive state.
    const start = last ? Date.parse(last.deadlineAt) + HOUR : Date.now() + 24 * HOUR;
    this.waves.push(
      new WaveDraft({
        name: '',
        all: true,
        startsAt: toLocalInput(start),
        deadlineAt: toLocalInput(start + 7 * 24 * HOUR),
      }),
    );
  }

  removeWave(i: number) {
    this.waves.splice(i, 1);
  }

  toPlan(): RolloutPlan {
    return {
      name: this.name.trim(),
      releaseId: this.releaseId,
      ...(this.seed.trim() ? { seed: this.seed.trim() } : {}),
      policy: {
        successThreshold: Number(this.successPercent) / 100,
        failureThreshold: Number(this.failurePercent) / 100,
        autoAdvance: this.autoAdvance,
        soakMinutes: Number(this.soakMinutes),
        bundleLeadHours: Number(this.bundleLeadHours),
        buildBundles: this.buildBundles,
      },
      waves: this.waves.map((w) => ({
        name: w.name.trim(),
        selector: w.toSelector(),
        startsAt: w.startsAt ? fromLocalInput(w.startsAt) : '',
        deadlineAt: w.deadlineAt ? fromLocalInput(w.deadlineAt) : '',
      })),
    };
  }
}
