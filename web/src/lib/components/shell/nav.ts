/** `labelKey` is an i18n key (locales/<lang>/nav.json). */
export interface NavItem {
  href: string;
  labelKey: string;
}

export const NAV_ITEMS: readonly NavItem[] = [
  { href: '/', labelKey: 'nav.fleet' },
  { href: '/sites', labelKey: 'nav.sites' },
  { href: '/releases', labelKey: 'nav.releases' },
  { href: '/rollouts', labelKey: 'nav.rollouts' },
  { href: '/bundles', labelKey: 'nav.bundles' },
  { href: '/settings', labelKey: 'nav.settings' },
];

/** A coordinator's own navigation: their sites and their account, nothing of the ministry's. */
export const COORDINATOR_NAV_ITEMS: readonly NavItem[] = [
  { href: '/my', labelKey: 'nav.mySites' },
  { href: '/my/account', labelKey: 'nav.myAccount' },
];

export function navItemsFor(role: string | undefined): readonly NavItem[] {
  return role === 'coordinator' ? COORDINATOR_NAV_ITEMS : NAV_ITEMS;
}

export function isCurrent(item: NavItem, pathname: string): boolean {
  if (item.href === '/my') return pathname === '/my' || pathname.startsWith('/my/sites');
  return item.href === '/'
    ? pathname === '/'
    : pathname === item.href || pathname.startsWith(`${item.href}/`);
}
