export {
  buildSitePart,
  SitePartError,
  BUNDLE_FORMAT,
  IMAGES_PATH,
  type BuildSitePartOptions,
  type SitePart,
  type SitePartScript,
  type BundleFile,
  type BundleManifest,
} from './site-part.ts';
export {
  stitchPlan,
  rangeSlices,
  type StitchPlan,
  type StitchSegment,
  type SharedObject,
  type RangeSlice,
} from './stitch.ts';
export { renderEnvFile, renderReleaseConf, shellQuote, EnvFileError, type ReleaseConf } from './env-file.ts';
export { defaultReadme, type DefaultReadmeOptions, type ReadmeLanguage } from './readme.ts';
