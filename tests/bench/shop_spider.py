# tests/bench/shop_spider.py: what the Scrapy crawlers of the benchmarks extract from a mock-shop
# page (tests/bench/crawl_scrapy.py, crawl_scrapy_redis.py) — the crawl of crawl-bare.ts and
# crawl-mocra.ts: one item per item page, every item and list link on the shop followed.


def shop_item(response):
    """The item of an item page (None for a list page)."""
    if "/item/" not in response.url:
        return None
    return {
        "url": response.url,
        "title": response.css("h1.title::text").get(),
        "price": response.css("span.price::text").get(),
        "description": (response.css("div.desc::text").get() or "")[:200],
    }


def shop_links(response, shop_url):
    """The absolute item and list links of a page that stay on the shop."""
    for href in response.css("a[href*='/item/']::attr(href), a[href*='/list/']::attr(href)").getall():
        url = response.urljoin(href)
        if url.startswith(shop_url):
            yield url
