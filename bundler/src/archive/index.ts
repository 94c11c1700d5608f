export { copyBlobsToStore, storeBlobReader, teeingBlobReader, blobKey, BLOB_PREFIX, type ObjectStoreTarget, type CopyBlobsOptions, type CopiedBlob, type BlobSource, type TeeingBlobReader } from './store.ts';
export {
  buildImagesArchive,
  archiveImageFromRegistry,
  ArchiveError,
  type ArchiveImage,
  type ArchiveErrorKind,
  type BuildImagesArchiveOptions,
  type ImagesArchive,
} from './images-archive.ts';
export { storeImagesArchive, type StoreImagesArchiveOptions, type StoredImagesArchive } from './store-archive.ts';
export { tarHeader, tarPadding, tarTrailer, tarEntryLength, type TarEntry } from './tar.ts';
