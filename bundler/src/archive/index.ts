export {
  copyBlobsToStore,
  storeBlobReader,
  readStoredRange,
  teeingBlobReader,
  type CopyBlobsOptions,
  type CopiedBlob,
  type BlobSource,
  type TeeingBlobReader,
} from './store.ts';
export {
  blobKey,
  BLOB_PREFIX,
  headSize,
  deleteQuietly,
  isNotFound,
  storeFailure,
  isStoreUnavailable,
  type ObjectStoreTarget,
  type StoreFailure,
} from './object-store.ts';
export {
  buildImagesArchive,
  readImagesArchive,
  archiveImageFromRegistry,
  ArchiveError,
  type ArchiveImage,
  type ArchiveErrorKind,
  type BuildImagesArchiveOptions,
  type ImagesArchive,
  type ImagesArchiveLayout,
} from './images-archive.ts';
export {
  recordImagesArchive,
  type RecordImagesArchiveOptions,
  type RecordedImagesArchive,
} from './store-archive.ts';
export {
  storedGzip,
  storedGzipPieces,
  storedGzipSize,
  storedGzipTrailer,
  STORED_BLOCK,
} from './stored-gzip.ts';
export { tarHeader, tarPadding, tarTrailer, tarEntryLength, type TarEntry } from './tar.ts';
