export {
  startRegistry,
  corruptBlob,
  registryBlobPath,
  freePort,
  type TestRegistry,
  type TestRegistryOptions,
} from './registry.ts';
export { startTokenServer, type TokenServer } from './token-server.ts';
export {
  buildTestImage,
  buildMultiArchImage,
  buildLargeTestImage,
  imageOfDescriptors,
  randomStream,
  type TestLayer,
  type TestImage,
  type TestImageOptions,
  type TestMultiArchImage,
} from './image.ts';
export { pushImage, skopeoInspect, type RegistryLogin, type PushOptions } from './skopeo.ts';
export { runProcess, type ProcessRun } from './process.ts';
export { podmanLoad } from './podman.ts';
export { testAllowInsecure, testRegistryPolicy, allowTestHost } from './allow-list.ts';
