export {
  generateSigningKey,
  fingerprintOf,
  signManifest,
  verifyManifest,
  type SigningKey,
} from './signing.ts';
