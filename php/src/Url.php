<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\InvalidInputException;

/**
 * URL checks done in PHP before any tool runs. URLs are never re-encoded: nginx caches under the exact
 * request-target bytes, so `%e6` and `%E6` are different pages and the caller's bytes are kept.
 */
final class Url
{
    private function __construct()
    {
    }

    /**
     * Returns $url unchanged if it is an absolute http(s) URL with a host, no user info, no fragment,
     * no whitespace or control characters and only ASCII bytes; throws otherwise.
     *
     * @throws InvalidInputException
     */
    public static function absolute(string $url, string $what = 'URL'): string
    {
        if ($url === '') {
            throw new InvalidInputException("$what is empty");
        }
        if (strlen($url) > 8192) {
            throw new InvalidInputException("$what is longer than 8192 bytes");
        }
        if (preg_match('/[\x00-\x20\x7f-\xff]/', $url) === 1) {
            throw new InvalidInputException(sprintf(
                '%s %s contains whitespace, control or non-ASCII bytes (percent-encode them as the site does)',
                $what,
                self::show($url)
            ));
        }
        if (preg_match('~^https?://~i', $url) !== 1) {
            throw new InvalidInputException(sprintf('%s %s is not an absolute http(s) URL', $what, self::show($url)));
        }
        $parts = parse_url($url);
        if ($parts === false || !isset($parts['host']) || $parts['host'] === '') {
            throw new InvalidInputException(sprintf('%s %s has no host', $what, self::show($url)));
        }
        if (isset($parts['user']) || isset($parts['pass'])) {
            throw new InvalidInputException(sprintf('%s %s carries user info', $what, self::show($url)));
        }
        if (strpos($url, '#') !== false) {
            throw new InvalidInputException(sprintf('%s %s has a fragment (never sent to the server)', $what, self::show($url)));
        }
        if (preg_match('/^[A-Za-z0-9.\-]+$|^\[[0-9A-Fa-f:.]+\]$/', $parts['host']) !== 1) {
            throw new InvalidInputException(sprintf('%s %s has an invalid host', $what, self::show($url)));
        }
        return $url;
    }

    /**
     * Checks a list of URLs (at least one).
     *
     * @param string[] $urls
     * @return string[] the same URLs, re-indexed
     * @throws InvalidInputException
     */
    public static function absoluteList(array $urls, string $what = 'URL'): array
    {
        if ($urls === []) {
            throw new InvalidInputException("no $what given");
        }
        $out = [];
        foreach ($urls as $u) {
            if (!is_string($u)) {
                throw new InvalidInputException("$what list holds a non-string value");
            }
            $out[] = self::absolute($u, $what);
        }
        return $out;
    }

    /** `scheme://host[:port]` of an absolute URL (lower-case scheme and host). */
    public static function origin(string $url): string
    {
        $p = parse_url(self::absolute($url));
        $origin = strtolower((string) $p['scheme']) . '://' . strtolower((string) $p['host']);
        if (isset($p['port'])) {
            $origin .= ':' . $p['port'];
        }
        return $origin;
    }

    /** A URL quoted for a one-line message, cut at 200 bytes and with control bytes escaped. */
    public static function show(string $s): string
    {
        $cut = strlen($s) > 200 ? substr($s, 0, 200) . '...' : $s;
        return '"' . addcslashes($cut, "\0..\37\177..\377\"\\") . '"';
    }
}
