// Compose templates for releases the tests publish and bundle.

/** One service on one image, `app`: the least a release needs to be bundled. */
export const ONE_IMAGE_TEMPLATE = 'services:\n  app:\n    image: {{ image.app }}\n';

/** The EMR's backend and frontend, the images the tests build and push: the demo release's template. */
export { DEMO_COMPOSE_TEMPLATE as EMR_TEMPLATE } from '../services/seed/demo.ts';
