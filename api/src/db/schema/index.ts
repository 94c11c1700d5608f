export * from './accounts.ts';
export * from './sites.ts';
