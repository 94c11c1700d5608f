import { startI18n } from '$lib/i18n';

// A single-page app served by the API: no server rendering, no prerendering.
export const ssr = false;
export const prerender = false;

// Messages must be there before each page renders (the first screens' few at first, all for the
// others; reading the path makes this run again on every navigation).
export const load = ({ url }) => startI18n(url.pathname);
