export * from './accounts.ts';
export * from './sites.ts';
export * from './releases.ts';
export * from './bundles.ts';
export * from './coordinators.ts';
