<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Live;

use NppSecure\CacheClient\Exception\ServiceUnavailableException;
use NppSecure\CacheClient\Exception\ToolFailedException;
use NppSecure\CacheClient\Purger;
use NppSecure\CacheClient\PurgeServiceClient;
use NppSecure\CacheClient\Safexec;

/**
 * Purges as the site user through the real `safexec cache-purge` and the real purge service, on the
 * site's own cache (its only cache_root with allow=<site user>). NPP_E2E_SOCKET is the service's
 * socket; NPP_E2E_OTHER_URL and NPP_E2E_OTHER_ROOT belong to a site this user may not purge.
 */
final class PurgerTest extends LiveEnv
{
    private static function safexec(): Safexec
    {
        return new Safexec(self::env('NPP_E2E_SAFEXEC'));
    }

    private static function viaSafexec(): Purger
    {
        return new Purger(self::safexec());
    }

    private static function viaService(): Purger
    {
        return new Purger(self::safexec(), new PurgeServiceClient(self::env('NPP_E2E_SOCKET'), 30.0));
    }

    /** The cache status a visitor gets (each call is a visit: a MISS stores the page). */
    private static function visit(string $url): string
    {
        $ctx = stream_context_create(['http' => [
            'header' => "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/142.0.0.0 Safari/537.36\r\nAccept: text/html\r\n",
            'ignore_errors' => true,
            'follow_location' => 0,
            'timeout' => 30,
        ]]);
        $body = @file_get_contents($url, false, $ctx);
        self::assertNotFalse($body, "GET $url failed");
        foreach ($http_response_header as $h) {
            if (stripos($h, 'X-FastCGI-Cache:') === 0) {
                return trim(substr($h, strlen('X-FastCGI-Cache:')));
            }
        }
        return '';
    }

    private static function warm(string $url): void
    {
        self::visit($url);
        self::assertSame('HIT', self::visit($url), "$url is not cached after two visits");
    }

    public function testSafexecPurgesAUrlOfTheUsersOwnSiteAndTheNextVisitMisses(): void
    {
        $url = self::env('NPP_E2E_BASE_URL') . '?purge-test=exact';
        self::warm($url);
        $r = self::viaSafexec()->purgeUrls([$url]);
        self::assertSame('safexec', $r->via);
        self::assertCount(1, $r->results);
        self::assertSame('purged', $r->results[0]->status);
        self::assertSame($url, $r->results[0]->target);
        self::assertGreaterThanOrEqual(1, $r->removed());
        self::assertSame('MISS', self::visit($url));
        // Not cached is a value, not an error.
        $again = self::viaSafexec()->purgeUrls([self::env('NPP_E2E_BASE_URL') . '?never-visited=' . bin2hex(random_bytes(4))]);
        self::assertSame('not_cached', $again->results[0]->status);
        self::assertSame(0, $again->removed());
    }

    public function testSafexecPurgesAPrefixAndEverything(): void
    {
        $base = self::env('NPP_E2E_BASE_URL');
        $in = [$base . '?pfx=1', $base . '?pfx=2'];
        $out = $base . '?other=1';
        foreach (array_merge($in, [$out]) as $u) {
            self::warm($u);
        }
        $r = self::viaSafexec()->purgePrefix($base . '?pfx=');
        self::assertSame(2, $r->removed());
        self::assertSame('MISS', self::visit($in[0]));
        self::assertSame('HIT', self::visit($out));
        $all = self::viaSafexec()->purgeAll($base);
        self::assertGreaterThanOrEqual(3, $all->removed());
        self::assertSame('MISS', self::visit($out));
    }

    public function testAnotherSitesCacheIsOutOfReach(): void
    {
        // This user has one cache root, so safexec picks it whatever the URL's host: another
        // site's URL is only looked up in the user's own cache, where it is not.
        $r = self::viaSafexec()->purgeUrls([self::env('NPP_E2E_OTHER_URL')]);
        self::assertSame('not_cached', $r->results[0]->status);
        self::assertSame(0, $r->removed());
        // Naming the other site's cache root is refused, with safexec's message.
        try {
            self::viaSafexec()->purgeAll(self::env('NPP_E2E_BASE_URL'), self::env('NPP_E2E_OTHER_ROOT'));
            self::fail("purged another site's cache root");
        } catch (ToolFailedException $e) {
            self::assertSame('cache-purge', $e->getTool());
            self::assertNotSame(0, $e->getExitCode());
            self::assertStringContainsString('is not one of your configured cache roots', $e->getToolMessage());
        }
    }

    public function testTheServicePurgesAndReWarmsBeforeAnswering(): void
    {
        $url = self::env('NPP_E2E_BASE_URL') . '?purge-test=service';
        self::warm($url);
        $r = self::viaService()->purgeUrls([$url], Purger::REWARM_WAIT);
        self::assertSame('service', $r->via);
        self::assertSame('purged', $r->results[0]->status);
        self::assertGreaterThanOrEqual(1, $r->results[0]->removed);
        self::assertIsArray($r->results[0]->raw['rewarm']);
        self::assertSame('HIT', self::visit($url), 're-warmed before the answer');
        $f = self::viaService()->refreshUrls([$url]);
        self::assertSame('refreshed', $f->results[0]->status);
        self::assertSame('HIT', self::visit($url));
        $prefix = self::viaService()->purgePrefix(self::env('NPP_E2E_BASE_URL') . '?purge-test=');
        self::assertSame('service', $prefix->via);
        self::assertGreaterThanOrEqual(1, $prefix->removed());
    }

    public function testTheServiceRefusesAnotherSiteWithItsMessage(): void
    {
        try {
            self::viaService()->purgeUrls([self::env('NPP_E2E_OTHER_URL')]);
            self::fail("the service purged another site's URL");
        } catch (ToolFailedException $e) {
            self::assertSame('purged', $e->getTool());
            self::assertStringContainsString(self::env('NPP_E2E_OTHER_URL'), $e->getMessage());
        }
    }

    public function testWithoutTheServiceTheSafexecPathIsTaken(): void
    {
        $url = self::env('NPP_E2E_BASE_URL') . '?purge-test=fallback';
        self::warm($url);
        $p = new Purger(self::safexec(), new PurgeServiceClient('/nonexistent/purged.sock'));
        $r = $p->purgeUrls([$url]);
        self::assertSame('safexec', $r->via);
        self::assertStringContainsString('no purge service socket', $r->fallbackReason);
        self::assertSame('purged', $r->results[0]->status);
        $this->expectException(ServiceUnavailableException::class);
        (new Purger(null, new PurgeServiceClient('/nonexistent/purged.sock')))->purgeUrls([$url]);
    }
}
