export interface NavItem { href: string; label: string }

export const NAV_ITEMS: readonly NavItem[] = [
  { href: '/', label: 'Fleet' },
  { href: '/sites', label: 'Sites' },
  { href: '/releases', label: 'Releases' },
  { href: '/rollouts', label: 'Rollouts' },
  { href: '/bundles', label: 'Bundles' },
  { href: '/settings', label: 'Settings' },
];

export function isCurrent(item: NavItem, pathname: string): boolean {
  return item.href === '/' ? pathname === '/' : pathname === item.href || pathname.startsWith(`${item.href}/`);
}
