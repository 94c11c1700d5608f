// What the rollout verbs take. The routes validate it (routes/rollout-input.ts, which also documents
// it in the OpenAPI document); a schema that drifts from these types fails the type-check there.
// The selector and policy are stored as they are given, so their types are the table's.
import type { RolloutPolicy, WaveSelector } from '../../db/schema/index.ts';

export interface WavePlan {
  name: string;
  selector: WaveSelector;
  /** ISO 8601 with an offset. */
  startsAt: string;
  deadlineAt: string;
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
