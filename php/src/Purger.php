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

    /**
     * Purges exactly these URLs (bytes as visitors send them; all variants of each).
     *
     * @param string[] $urls
     * @param bool $rewarm ask the service to re-warm them afterwards (the safexec path never re-warms)
     * @throws InvalidInputException
     * @throws ToolFailedException
     * @throws SafexecUnavailableException only the service was configured and it is down
     */
    public function purgeUrls(array $urls, bool $rewarm = false): PurgeReport
    {
        $urls = Url::absoluteList($urls);
        return $this->dispatch(
            ['op' => 'purge', 'urls' => $urls, 'rewarm' => $rewarm],
            array_merge(['--json', '--'], $urls),
            $urls
        );
    }

    /**
     * Purges every cached URL that starts with $prefix (an absolute URL; its path may end anywhere).
     *
     * @throws InvalidInputException
     * @throws ToolFailedException
     */
    public function purgePrefix(string $prefix, bool $rewarm = false): PurgeReport
    {
        $prefix = Url::absolute($prefix, 'prefix');
        return $this->dispatch(
            ['op' => 'purge_prefix', 'prefix' => $prefix, 'rewarm' => $rewarm],
            ['--json', '--prefix', $prefix],
            [$prefix]
        );
    }

    /**
     * Purges the whole cache of the site at $siteUrl (its base URL chooses the cache root when the
     * user has several; $cachePath names one of the user's configured roots instead).
     *
     * @throws InvalidInputException
     * @throws ToolFailedException
     */
    public function purgeAll(string $siteUrl, ?string $cachePath = null): PurgeReport
    {
        $site = Url::origin($siteUrl);
        $args = ['--json', '--all'];
        if ($cachePath !== null) {
            if ($cachePath === '' || $cachePath[0] !== '/' || preg_match('/[\x00-\x1f]|(^|\/)\.\.(\/|$)/', $cachePath) === 1) {
                throw new InvalidInputException(sprintf('cache path %s is not a clean absolute path', Url::show($cachePath)));
            }
            $args = ['--json', '--cache-path', $cachePath, '--all'];
        }
        return $this->dispatch(['op' => 'purge_all', 'site' => $site, 'rewarm' => false], $args, ['*']);
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
                return new PurgeReport('service', self::results($a['results'] ?? [], $targets), '', $a);
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
        if ($r->exitCode !== 0) {
            throw new ToolFailedException('cache-purge', $r->exitCode, $r->message());
        }
        $objects = [];
        $summary = null;
        foreach (explode("\n", $r->stdout) as $line) {
            $line = trim($line);
            if ($line === '' || $line[0] !== '{') {
                continue;
            }
            $o = json_decode($line, true);
            if (!is_array($o)) {
                continue;
            }
            $kind = $o['event'] ?? $o['type'] ?? null;
            if ($kind === 'summary') {
                $summary = $o;
            } else {
                $objects[] = $o;
            }
        }
        return new PurgeReport('safexec', self::results($objects, $targets), $why, $summary);
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
