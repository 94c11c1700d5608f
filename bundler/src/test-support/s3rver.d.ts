// s3rver ships no types: what the bundler's test set-up uses of it.
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: {
      address?: string;
      port?: number;
      directory?: string;
      silent?: boolean;
      configureBuckets?: { name: string; configs: unknown[] }[];
    });
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
