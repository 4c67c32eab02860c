# tests/bench/crawl_scrapy_redis.py: one scrapy-redis node on the mock shop — the crawl of
# crawl_scrapy.py (every item and list link, one item per item page), with scrapy-redis's scheduler,
# request queue and dupefilter in Redis and its RedisPipeline storing items in a Redis list: the
# setup a scrapy-redis user runs on each machine. Nodes started with the same --name share the crawl.
# tests/benchmark_scrapy_redis.ts starts them, pushes the start URL and times them.
#
#   PYTHONPATH=<scrapy-redis checkout>/src python3 tests/bench/crawl_scrapy_redis.py \
#       --name NAME --redis-port PORT --url SHOP --concurrency C
#
# Prints READY once the spider is open; runs until killed (the benchmark stops it). Needs Debian's
# python3-scrapy and python3-redis, and a scrapy-redis checkout (not packaged: fetch rmax/scrapy-redis).
import argparse

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy_redis.spiders import RedisSpider
from shop_spider import shop_item, shop_links

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--redis-port", type=int, required=True)
parser.add_argument("--url", required=True)
parser.add_argument("--concurrency", type=int, default=64)
args = parser.parse_args()


class ShopSpider(RedisSpider):
    name = args.name

    def parse(self, response):
        item = shop_item(response)
        if item is not None:
            yield item
        for url in shop_links(response, args.url):
            yield response.follow(url, callback=self.parse)


settings = {
    "LOG_LEVEL": "ERROR",
    "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
    "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
    "SCHEDULER_PERSIST": True,
    "REDIS_URL": f"redis://127.0.0.1:{args.redis_port}",
    "ITEM_PIPELINES": {"scrapy_redis.pipelines.RedisPipeline": 300},
    # start URLs are read from Redis in batches of this size; the idle node polls for more
    "REDIS_START_URLS_BATCH_SIZE": args.concurrency,
    "CONCURRENT_REQUESTS": args.concurrency,
    "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
    "CONCURRENT_REQUESTS_PER_IP": 0,
    "DOWNLOAD_DELAY": 0,
    "ROBOTSTXT_OBEY": False,
    "RETRY_ENABLED": False,
    "COOKIES_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "AUTOTHROTTLE_ENABLED": False,
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
}

process = CrawlerProcess(settings)
crawler = process.create_crawler(ShopSpider)


def opened(spider):
    print("READY", flush=True)


crawler.signals.connect(opened, signal=signals.spider_opened)
process.crawl(crawler)
process.start()
