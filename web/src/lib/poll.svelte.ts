/**
 * Calls `tick` every `ms` while `active()` is true, never two at once, and not while the tab is
 * hidden (a phone on 3G should not spend its data on a page nobody looks at). Call it while a
 * component initialises: it registers an effect, which stops with the component.
 */
export function pollWhile(active: () => boolean, tick: () => Promise<unknown> | void, ms = 3000) {
  $effect(() => {
    if (!active()) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const run = async () => {
      try {
        if (!document.hidden) await tick();
      } finally {
        if (!stopped) timer = setTimeout(run, ms);
      }
    };
    timer = setTimeout(run, ms);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  });
}
