import path from 'node:path';
import { buildTestImage, pushImage, type TestImage } from '@outpost/bundler/test-support';

/**
 * The EMR images the release and bundle tests publish, built under `work` and pushed to the registry
 * at `registryHost`: emr/backend:1.0 and :1.1 (one shared base layer, the app layer changed, so a
 * delta has something to leave out) and emr/frontend:1.0.
 */
export async function pushEmrImages(
  work: string,
  registryHost: string,
): Promise<{ backend10: TestImage; backend11: TestImage; frontend: TestImage }> {
  const base = { files: { 'etc/os-release': 'NAME=outpost-test\n' } };
  const backend10 = await buildTestImage({
    dir: path.join(work, 'backend'),
    tag: '1.0',
    layers: [base, { files: { 'app/backend.txt': 'backend 1.0\n' } }],
  });
  const backend11 = await buildTestImage({
    dir: path.join(work, 'backend'),
    tag: '1.1',
    layers: [base, { files: { 'app/backend.txt': 'backend 1.1 with a fix\n' } }],
  });
  const frontend = await buildTestImage({
    dir: path.join(work, 'frontend'),
    tag: '1.0',
    layers: [base, { files: { 'www/index.html': '<h1>EMR</h1>\n' } }],
  });
  await pushImage(backend10.dir, '1.0', `${registryHost}/emr/backend:1.0`);
  await pushImage(backend11.dir, '1.1', `${registryHost}/emr/backend:1.1`);
  await pushImage(frontend.dir, '1.0', `${registryHost}/emr/frontend:1.0`);
  return { backend10, backend11, frontend };
}
