<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\Exception\SafexecUnavailableException;
use NppSecure\CacheClient\Exception\ServiceUnavailableException;
use NppSecure\CacheClient\Exception\ToolFailedException;

/**
 * Purges cache entries: exact URLs (every Vary variant), everything under a URL prefix, or a whole
 * site's cache. Asks the purge service first (it also re-warms); when its socket is missing or does
 * not answer, runs `safexec cache-purge`, which deletes as the cache owner. Either way the PHP user
 * needs no access to nginx's files. A refusal (not this user's site, a bad URL) is an exception with
 * the tool's message and is never retried another way.
 */
final class Purger
{
    /** @var Safexec|null */
    private $safexec;
    /** @var PurgeServiceClient|null */
    private $service;
    /** @var float */
    private $timeout;

    /**
     * @param Safexec|null            $safexec the fallback (null: service only)
     * @param PurgeServiceClient|null $service the purge service (null: safexec only)
     * @throws InvalidInputException neither given
     */
    public function __construct(?Safexec $safexec, ?PurgeServiceClient $service = null, float $timeout = 60.0)
    {
        if ($safexec === null && $service === null) {
            throw new InvalidInputException('a Purger needs the purge service, safexec, or both');
        }
        $this->safexec = $safexec;
        $this->service = $service;
        $this->timeout = $timeout;
    }

    /** Re-warm modes of the purge service: none, in the background, or before answering. */
    public const REWARM_OFF = 'off';
    public const REWARM_QUEUE = 'queue';
    public const REWARM_WAIT = 'wait';

    /**
     * Purges exactly these URLs (bytes as visitors send them; every method, %xx case form and Vary
     * variant of each). $rewarm asks the purge service to re-request them (the safexec fallback
     * never re-warms: {@see PurgeReport::$via} says which path was taken).
     *
     * @param string[] $urls
     * @throws InvalidInputException
     * @throws ToolFailedException a URL was refused (not this user's site) or its purge failed
     * @throws ServiceUnavailableException only the service was configured and it is down
     */
    public function purgeUrls(array $urls, string $rewarm = self::REWARM_OFF): PurgeReport
    {
        $urls = Url::absoluteList($urls);
        if (!in_array($rewarm, [self::REWARM_OFF, self::REWARM_QUEUE, self::REWARM_WAIT], true)) {
            throw new InvalidInputException(sprintf('rewarm must be off, queue or wait (got %s)', Url::show($rewarm)));
        }
        if (count($urls) > 1000) {
            throw new InvalidInputException('at most 1000 URLs per purge');
        }
        return $this->dispatch(
            ['op' => 'purge', 'urls' => $urls, 'rewarm' => $rewarm],
            array_merge(['--json', '--'], $urls),
            $urls
        );
    }

    /**
     * Replaces these URLs' cache entries in place through the purge service: it re-requests each
     * variant with its refresh header, so visitors keep getting HITs (the old page until the new one
     * is stored). Only the service can do this; without it, throws ServiceUnavailableException.
     *
     * @param string[] $urls
     * @throws InvalidInputException
     * @throws ToolFailedException
     * @throws ServiceUnavailableException
     */
    public function refreshUrls(array $urls): PurgeReport
    {
        $urls = Url::absoluteList($urls);
        if ($this->service === null) {
            throw new ServiceUnavailableException('refreshing in place needs the purge service');
        }
        $a = $this->service->call(['op' => 'refresh', 'urls' => $urls]);
        return self::checked(new PurgeReport('service', self::results($a['results'] ?? [], $urls), '', $a), 'purged');
    }

    /**
     * Purges every cached URL that starts with $prefix (compared as nginx keys it: `/blog/` covers
     * `/blog/x` and `/blog/?p=2`, not `/blogx`).
     *
     * @throws InvalidInputException
     * @throws ToolFailedException
     */
    public function purgePrefix(string $prefix): PurgeReport
    {
        $prefix = Url::absolute($prefix, 'prefix');
        return $this->dispatch(
            ['op' => 'prefix', 'url' => $prefix],
            ['--json', '--prefix', $prefix],
            [$prefix]
        );
    }

    /**
     * Purges the whole cache of the site at $siteUrl. Through safexec the site is the user's only
     * cache root, or $cachePath names one of the user's configured roots.
     *
     * @throws InvalidInputException
     * @throws ToolFailedException
     */
    public function purgeAll(string $siteUrl, ?string $cachePath = null): PurgeReport
    {
        $site = Url::origin($siteUrl);
        $args = ['--json', '--all'];
        $request = ['op' => 'all', 'site' => $site];
        if ($cachePath !== null) {
            if ($cachePath === '' || $cachePath[0] !== '/' || preg_match('/[\x00-\x1f]|(^|\/)\.\.(\/|$)/', $cachePath) === 1) {
                throw new InvalidInputException(sprintf('cache path %s is not a clean absolute path', Url::show($cachePath)));
            }
            $args = ['--json', '--cache-path', $cachePath, '--all'];
            $request['site'] = $cachePath;
        }
        return $this->dispatch($request, $args, ['*']);
    }

    /**
     * @param array<string,mixed> $request  the service request
     * @param string[]            $cliArgs  arguments after `safexec cache-purge`
     * @param string[]            $targets  for results the tool did not name
     */
    private function dispatch(array $request, array $cliArgs, array $targets): PurgeReport
    {
        $why = 'no purge service configured';
        if ($this->service !== null) {
            try {
                $a = $this->service->call($request);
                $list = $a['results'] ?? [$a];
                return self::checked(new PurgeReport('service', self::results($list, $targets), '', $a), 'purged');
            } catch (ServiceUnavailableException $e) {
                if ($this->safexec === null) {
                    throw $e;
                }
                $why = $e->getMessage();
            }
        }
        if ($this->safexec === null) {
            throw new SafexecUnavailableException('no safexec configured for the fallback');
        }
        $r = $this->safexec->run(array_merge(['cache-purge'], $cliArgs), $this->timeout, 'cache-purge');
        // 0: done; 4: done, unsafe entries left alone (listed in the results). 1: a deletion
        // failed, 2: bad input, 3: unsafe setup; safexec's own refusals exit 1 as well.
        if ($r->exitCode !== 0 && $r->exitCode !== 4) {
            throw new ToolFailedException('cache-purge', $r->exitCode, $r->message());
        }
        $objects = [];
        foreach (explode("\n", $r->stdout) as $line) {
            $line = trim($line);
            if ($line === '' || $line[0] !== '{') {
                continue;
            }
            $o = json_decode($line, true);
            if (is_array($o) && !isset($o['index'])) {
                $objects[] = $o;
            }
        }
        return new PurgeReport('safexec', self::results($objects, $targets), $why, null);
    }

    /** Throws for the first result the tool refused or failed; returns the report otherwise. */
    private static function checked(PurgeReport $report, string $tool): PurgeReport
    {
        foreach ($report->results as $r) {
            if (in_array($r->status, ['refused', 'busy', 'error', 'failed'], true)) {
                $err = $r->raw['error'] ?? $r->status;
                throw new ToolFailedException($tool, -1, $r->target . ': ' . (is_string($err) ? $err : $r->status));
            }
        }
        return $report;
    }

    /**
     * @param mixed    $list
     * @param string[] $targets
     * @return PurgeResult[]
     */
    private static function results($list, array $targets): array
    {
        $out = [];
        if (!is_array($list)) {
            return $out;
        }
        foreach (array_values($list) as $i => $o) {
            if (is_array($o)) {
                $out[] = PurgeResult::fromJson($o, $targets[$i] ?? $targets[0] ?? '');
            }
        }
        return $out;
    }
}
