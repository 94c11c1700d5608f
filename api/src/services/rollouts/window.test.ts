import { describe, expect, it } from 'vitest';
import { inMaintenanceWindow } from './window.ts';

describe('inMaintenanceWindow', () => {
  it("should read a daily window past midnight in the site's time zone", () => {
    // 2026-12-02 is a Wednesday. Nairobi is UTC+3.
    expect(inMaintenanceWindow('daily 22:00-04:00', 'Africa/Nairobi', new Date('2026-12-02T19:30:00Z'))).toBe(
      true,
    ); // 22:30 local
    expect(inMaintenanceWindow('daily 22:00-04:00', 'Africa/Nairobi', new Date('2026-12-02T00:30:00Z'))).toBe(
      true,
    ); // 03:30 local
    expect(inMaintenanceWindow('daily 22:00-04:00', 'Africa/Nairobi', new Date('2026-12-02T09:00:00Z'))).toBe(
      false,
    ); // 12:00 local
  });

  it('should honour the days of a window, including the night after the last day', () => {
    expect(inMaintenanceWindow('sat-sun 08:00-12:00', 'UTC', new Date('2026-12-05T09:00:00Z'))).toBe(true); // Saturday
    expect(inMaintenanceWindow('sat-sun 08:00-12:00', 'UTC', new Date('2026-12-04T09:00:00Z'))).toBe(false); // Friday
    expect(inMaintenanceWindow('sun 23:00-02:00', 'UTC', new Date('2026-12-07T01:00:00Z'))).toBe(true); // Monday 01:00, Sunday's night
    expect(inMaintenanceWindow('sun 23:00-02:00', 'UTC', new Date('2026-12-08T01:00:00Z'))).toBe(false); // Tuesday 01:00
  });

  it('should let a site without a window install at any time', () => {
    expect(inMaintenanceWindow(null, 'UTC', new Date())).toBe(true);
  });
});
