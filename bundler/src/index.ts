export * from './registry/index.ts';
export * from './archive/index.ts';
export * from './signing/index.ts';
export * from './site/index.ts';
export * from './compose/index.ts';
