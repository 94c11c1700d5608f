/** `labelKey` is an i18n key (locales/<lang>/nav.json). */
export interface NavItem { href: string; labelKey: string }

export const NAV_ITEMS: readonly NavItem[] = [
  { href: '/', labelKey: 'nav.fleet' },
  { href: '/sites', labelKey: 'nav.sites' },
  { href: '/releases', labelKey: 'nav.releases' },
  { href: '/rollouts', labelKey: 'nav.rollouts' },
  { href: '/bundles', labelKey: 'nav.bundles' },
  { href: '/settings', labelKey: 'nav.settings' },
];

export function isCurrent(item: NavItem, pathname: string): boolean {
  return item.href === '/' ? pathname === '/' : pathname === item.href || pathname.startsWith(`${item.href}/`);
}
