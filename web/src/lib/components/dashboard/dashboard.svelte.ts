import { api, handleError, type FleetAdoption, type FleetOverview, type Problem } from '$lib/api';
import { bootDashboard } from '$lib/boot';
import { fleetFilter, type DashboardView } from './filter';

/**
 * The dashboard's data: two requests, fired together — everything but adoption (one grouped pass
 * over the fleet on the server), and adoption over time (from the report rollup). A newer view
 * supersedes a request still in flight, so a fast click through the filters never shows old figures.
 */
export class DashboardData {
  overview = $state<FleetOverview | null>(null);
  adoption = $state<FleetAdoption | null>(null);
  problem = $state<Problem | null>(null);
  loading = $state(false);
  private ticket = 0;

  async load(view: DashboardView) {
    const mine = ++this.ticket;
    this.loading = true;
    this.problem = null;
    const filter = fleetFilter(view);
    try {
      // On a cold load, app.html has asked already (src/lib/boot.ts).
      const [overview, adoption] = await Promise.all(
        bootDashboard(view, {
          overview: () => api.fleet.overview(filter),
          adoption: () => api.fleet.adoption(filter, view.days),
        }),
      );
      if (mine !== this.ticket) return;
      this.overview = overview;
      this.adoption = adoption;
    } catch (err) {
      if (mine === this.ticket) this.problem = handleError(err);
    } finally {
      if (mine === this.ticket) this.loading = false;
    }
  }
}
