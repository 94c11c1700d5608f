// What the rollout verbs take. The routes validate it (routes/rollout-input.ts, which also documents
// it in the OpenAPI document); a schema that drifts from these types fails the type-check there.

/** Which sites a wave takes: all remaining ones, or those the filters and codes name. */
export interface WaveSelector {
  all?: boolean;
  regions?: string[];
  districts?: string[];
  tags?: string[];
  siteCodes?: string[];
  excludeCodes?: string[];
  /** Percent of the matching sites, chosen reproducibly from the rollout seed. */
  share?: number;
  /** At most this many of the matching sites, chosen reproducibly. */
  count?: number;
}

export interface WavePlan {
  name: string;
  selector: WaveSelector;
  /** ISO 8601 with an offset. */
  startsAt: string;
  deadlineAt: string;
}

export interface RolloutPolicy {
  successThreshold: number;
  failureThreshold: number;
  autoAdvance: boolean;
  soakMinutes: number;
  bundleLeadHours: number;
  buildBundles: boolean;
}

export interface PlanInput {
  name: string;
  releaseId: string;
  seed?: string;
  policy: RolloutPolicy;
  waves: WavePlan[];
}

export interface CreateRolloutInput extends PlanInput {
  /** Save without scheduling (no site is reserved yet). */
  draft: boolean;
}
