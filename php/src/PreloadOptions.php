<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\InvalidInputException;

/**
 * What to preload and how: a checked, typed set of cache-preload options. Every value is validated
 * when it is set; options that read or write files, run programs or change identity cannot be
 * expressed at all (and {@see option()} refuses them by name).
 */
final class PreloadOptions
{
    /** Flags that may be passed through {@see option()}: [takes a value, value pattern]. */
    private const ALLOWED = [
        '--max-depth' => [true, '/^[0-9]{1,6}$/'],
        '--max-pages' => [true, '/^[0-9]{1,9}$/'],
        '--max-per-pattern' => [true, '/^[0-9]{1,9}$/'],
        '--max-queue' => [true, '/^[0-9]{1,9}$/'],
        '--max-concurrency' => [true, '/^[0-9]{1,3}$/'],
        '--max-rps' => [true, '/^[0-9]{1,6}(\.[0-9]+)?$/'],
        '--concurrency' => [true, '/^[0-9]{1,3}$/'],
        '--tries' => [true, '/^[0-9]{1,2}$/'],
        '--wait' => [true, '/^[0-9]{1,4}(\.[0-9]+)?$/'],
        '--retry-on' => [true, '/^[0-9]{3}(,[0-9]{3})*$/'],
        '--max-retry-wait' => [true, '/^[0-9]{1,4}(\.[0-9]+)?$/'],
        '--pct-mode' => [true, '/^(browser|upper|lower|preserve|off)$/'],
        '--cache-header' => [true, '/^[A-Za-z0-9-]{1,64}$/'],
        '--reject' => [true, '/^[A-Za-z0-9*.,_-]{1,2000}$/'],
        '--mobile' => [false, null],
        '--verify' => [false, null],
        '--no-recursive' => [false, null],
        '--robots-sitemaps' => [false, null],
    ];

    /** @var string[] */
    private $urls = [];
    /** @var string[] */
    private $sitemaps = [];
    /** @var bool */
    private $recursive = true;
    /** @var string[] */
    private $headers = [];
    /** @var array<int,array{0:string,1:?string}> */
    private $extra = [];
    /** @var string|null */
    private $rejectRegex = null;
    /** @var int|null */
    private $expectedTotal = null;

    /**
     * Start URLs, crawled recursively on their hosts (links followed) unless {@see onlyTheseUrls()}.
     *
     * @param string[] $urls absolute http(s) URLs, kept byte for byte
     * @throws InvalidInputException
     */
    public static function crawl(array $urls): self
    {
        $o = new self();
        $o->urls = Url::absoluteList($urls, 'start URL');
        return $o;
    }

    /**
     * Seeds from a sitemap or sitemap index and fetches exactly the pages it lists (no link following).
     *
     * @throws InvalidInputException
     */
    public static function sitemap(string $sitemapUrl): self
    {
        $o = new self();
        $o->sitemaps = [Url::absolute($sitemapUrl, 'sitemap URL')];
        $o->recursive = false;
        return $o;
    }

    /**
     * Exactly these pages, no link following (re-warming after a purge).
     *
     * @param string[] $urls
     * @throws InvalidInputException
     */
    public static function pages(array $urls): self
    {
        return self::crawl($urls)->onlyTheseUrls();
    }

    /** Fetch only the given URLs and sitemap pages; do not follow links. */
    public function onlyTheseUrls(): self
    {
        $this->recursive = false;
        return $this;
    }

    /**
     * Adds another sitemap to seed from.
     *
     * @throws InvalidInputException
     */
    public function withSitemap(string $sitemapUrl): self
    {
        $this->sitemaps[] = Url::absolute($sitemapUrl, 'sitemap URL');
        return $this;
    }

    /**
     * An extra request header ("Name: value"); replaces the crawler's default of the same name.
     *
     * @throws InvalidInputException
     */
    public function withHeader(string $name, string $value): self
    {
        if (preg_match('/^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,64}$/', $name) !== 1) {
            throw new InvalidInputException(sprintf('header name %s is not an HTTP token', Url::show($name)));
        }
        if (preg_match('/[\x00-\x08\x0a-\x1f\x7f]/', $value) === 1 || strlen($value) > 4096) {
            throw new InvalidInputException("header $name: value has control characters or is too long");
        }
        $this->headers[] = $name . ': ' . $value;
        return $this;
    }

    /**
     * Skip URLs matching this regex (Rust syntax, matched against the full URL).
     *
     * @throws InvalidInputException
     */
    public function rejecting(string $regex): self
    {
        if ($regex === '' || strlen($regex) > 4000 || preg_match('/[\x00-\x1f\x7f]/', $regex) === 1) {
            throw new InvalidInputException('reject regex is empty, too long or has control characters');
        }
        $this->rejectRegex = $regex;
        return $this;
    }

    /**
     * How many pages the run is expected to fetch (for the ETA); by default the previous run's count.
     *
     * @throws InvalidInputException
     */
    public function expecting(int $pages): self
    {
        if ($pages < 1) {
            throw new InvalidInputException('expected page count must be positive');
        }
        $this->expectedTotal = $pages;
        return $this;
    }

    /**
     * One more crawler flag from a fixed allowlist (limits, concurrency, retries, --mobile, --verify,
     * --pct-mode, ...). Anything else is refused by name, before anything runs: options that name
     * files (--url-list, --index-out, --cache-path, -o), run programs, set a proxy or change identity.
     *
     * @throws InvalidInputException
     */
    public function option(string $flag, ?string $value = null): self
    {
        if (strpos($flag, '=') !== false) {
            [$flag, $value] = explode('=', $flag, 2);
        }
        if (!isset(self::ALLOWED[$flag])) {
            throw new InvalidInputException(sprintf('option %s is not allowed (only %s)', Url::show($flag), implode(' ', array_keys(self::ALLOWED))));
        }
        [$takesValue, $pattern] = self::ALLOWED[$flag];
        if ($takesValue) {
            if ($value === null || preg_match((string) $pattern, $value) !== 1) {
                throw new InvalidInputException(sprintf('option %s: invalid value %s', $flag, Url::show((string) $value)));
            }
        } elseif ($value !== null) {
            throw new InvalidInputException("option $flag takes no value");
        }
        $this->extra[] = [$flag, $value];
        return $this;
    }

    /** The expected page count, if known. */
    public function expectedTotal(): ?int
    {
        return $this->expectedTotal;
    }

    /** @return string[] the start URLs and sitemaps */
    public function targets(): array
    {
        return array_merge($this->sitemaps, $this->urls);
    }

    /**
     * The crawler's argument list (after `safexec nohup`): `cache-preload --json ... -- URL...`.
     *
     * @return string[]
     */
    public function toArgs(): array
    {
        $a = ['cache-preload', '--json', '--no-progress'];
        foreach ($this->sitemaps as $s) {
            $a[] = '--sitemap=' . $s;
        }
        if (!$this->recursive) {
            $a[] = '--no-recursive';
        }
        foreach ($this->headers as $h) {
            $a[] = '--header=' . $h;
        }
        if ($this->rejectRegex !== null) {
            $a[] = '--reject-regex=' . $this->rejectRegex;
        }
        foreach ($this->extra as [$flag, $value]) {
            if ($flag === '--no-recursive' && !$this->recursive) {
                continue;
            }
            $a[] = $value === null ? $flag : $flag . '=' . $value;
        }
        $a[] = '--';
        foreach ($this->urls as $u) {
            $a[] = $u;
        }
        return $a;
    }
}
