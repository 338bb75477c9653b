"""Crawl stage: Scrapy, one subprocess per links part."""
