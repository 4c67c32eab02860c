// The demo module: crawls the bundled demo shop (examples/demo-shop/shop.ts), which `run-standalone --demo`
// serves on 127.0.0.1. A two-step module: list pages lead to item pages, item pages give items.
import { defineModule } from "../src/modules/define.ts";

export default defineModule({
  name: "demo_shop",
  settings: { startUrl: "http://127.0.0.1:8787/list/0" },

  start: ({ settings }) => [String(settings.startUrl)],

  steps: {
    list(page, ctx) {
      ctx.follow(page.links("a[href*='/item/']"), { step: "item" });
      ctx.follow(page.links("a[href*='/list/']"), { step: "list" });
    },
    item(page, ctx) {
      ctx.emit({
        url: page.url,
        title: page.text("h1.title"),
        price: page.text("span.price"),
        description: page.text("div.desc").slice(0, 200),
      });
      // item pages link to more items and back to lists: dedup keeps each page to one visit
      ctx.follow(page.links("a[href*='/item/']"), { step: "item" });
      ctx.follow(page.links("a[href*='/list/']"), { step: "list" });
    },
  },
});
