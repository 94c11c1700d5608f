import nodemailer from 'nodemailer';
import type { Mailer } from '../routes/app-env.ts';

/**
 * E-mail over SMTP (Node only: Workers have no sockets for it). `url` is a nodemailer connection
 * URL such as smtp://user:pass@mail.example.org:587; a server that does not answer within 15 s
 * fails the send, and the caller falls back to showing the link.
 */
export function smtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(
    { url, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 },
    { from },
  );
  return async ({ to, subject, text }) => {
    await transport.sendMail({ to, subject, text });
  };
}
