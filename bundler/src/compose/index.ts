export {
  fillTemplate,
  pinnedReference,
  SITE_FIELDS,
  type ComposeImage,
  type ComposeSite,
  type ComposeSiteField,
  type FilledTemplate,
  type Placeholder,
  type PlaceholderIssue,
  type PlaceholderValues,
} from './placeholders.ts';
