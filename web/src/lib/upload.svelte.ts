import type { UploadOptions } from '$lib/api';
import { formatBytes } from '$lib/format';

/**
 * A file on its way to the server: how much is sent, then that the server works on it, and a way to
 * cancel. The CSV import and the content-package upload each spelt this state out for themselves.
 *
 * @example
 * const upload = new Upload();
 * onDestroy(() => upload.cancel());
 * const pkg = await upload.send(file, (opts) => api.contentPackages.upload(file, { name, version, ...opts }));
 * // <UploadProgress {upload} sending={$t('…uploadingOf', { values: upload.figures })} processing={…} />
 */
export class Upload {
  phase = $state<'idle' | 'uploading' | 'processing'>('idle');
  sent = $state(0);
  total = $state(0);
  readonly busy = $derived(this.phase !== 'idle');
  readonly percent = $derived(this.total > 0 ? Math.min(100, Math.round((this.sent / this.total) * 100)) : 0);
  /** The values the "Uploading… {percent}% ({sent} of {total})" messages take. */
  readonly figures = $derived({
    percent: this.percent,
    sent: formatBytes(this.sent),
    total: formatBytes(this.total),
  });
  #controller: AbortController | null = null;

  /** Runs `call` with progress, `processing` once the whole file is sent; back to idle however it ends. */
  async send<T>(file: Blob, call: (opts: UploadOptions) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    this.#controller = controller;
    this.phase = 'uploading';
    this.sent = 0;
    this.total = file.size;
    try {
      return await call({
        signal: controller.signal,
        onProgress: (sent, total) => {
          this.sent = sent;
          this.total = total;
        },
        onUploaded: () => {
          this.phase = 'processing';
        },
      });
    } finally {
      this.phase = 'idle';
      this.#controller = null;
    }
  }

  cancel() {
    this.#controller?.abort();
  }
}
