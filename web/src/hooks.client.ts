import type { HandleClientError } from '@sveltejs/kit';
import { handleError as describe } from '$lib/api';

// Errors thrown while loading a page (e.g. the API is unreachable) reach the error page in plain words.
export const handleError: HandleClientError = ({ error }) => ({ message: describe(error).message });
