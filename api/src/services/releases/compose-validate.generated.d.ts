import type { ValidateFunction } from 'ajv';
/** The compose-spec schema, precompiled by api/scripts/compose-validator.ts. */
declare const validate: ValidateFunction;
export default validate;
export { validate };
