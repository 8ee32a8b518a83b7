<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\PreloadOptions;
use PHPUnit\Framework\TestCase;

final class PreloadOptionsTest extends TestCase
{
    public function testSitemapArgsAreAnArrayWithTheUrlsLast(): void
    {
        $o = PreloadOptions::sitemap('https://example.com/wp-sitemap.xml')
            ->withHeader('X-Npp-Refresh', 'a b;c')
            ->option('--max-pages', '500')
            ->option('--mobile')
            ->option('--pct-mode=lower');
        self::assertSame([
            'cache-preload', '--json', '--no-progress',
            '--sitemap=https://example.com/wp-sitemap.xml', '--no-recursive',
            '--header=X-Npp-Refresh: a b;c',
            '--max-pages=500', '--mobile', '--pct-mode=lower',
            '--',
        ], $o->toArgs());
    }

    public function testPagesAreNotCrawledAndComeAfterTheSeparator(): void
    {
        $args = PreloadOptions::pages(['https://example.com/-x/', 'https://example.com/%e6%b0%b4/'])->toArgs();
        self::assertContains('--no-recursive', $args);
        self::assertSame(['--', 'https://example.com/-x/', 'https://example.com/%e6%b0%b4/'], array_slice($args, -3));
    }

    /** @return array<string,array{string,?string}> */
    public function unsafeOptions(): array
    {
        return [
            'reads a file' => ['--url-list', '/etc/shadow'],
            'writes a file' => ['--index-out', '/tmp/x'],
            'reads the cache' => ['--cache-path', '/var/cache/nginx'],
            'wget output' => ['-O', '/tmp/x'],
            'wget execute' => ['-e', 'use_proxy=on'],
            'proxy' => ['--proxy', 'http://evil:3128'],
            'replay keys' => ['--replay-keys', '/var/cache/nginx'],
            'abbreviation' => ['--max-pag', '5'],
            'no dashes' => ['json', null],
        ];
    }

    /** @dataProvider unsafeOptions */
    public function testUnsafeOptionsAreRefusedByName(string $flag, ?string $value): void
    {
        $this->expectException(InvalidInputException::class);
        $this->expectExceptionMessage('is not allowed');
        PreloadOptions::crawl(['https://example.com/'])->option($flag, $value);
    }

    public function testValuesAreChecked(): void
    {
        $o = PreloadOptions::crawl(['https://example.com/']);
        foreach ([['--max-pages', '-1'], ['--max-pages', '5; rm -rf /'], ['--pct-mode', 'weird'], ['--mobile', 'yes'], ['--tries', null]] as [$f, $v]) {
            try {
                $o->option($f, $v);
                self::fail("accepted $f " . var_export($v, true));
            } catch (InvalidInputException $e) {
                self::assertStringContainsString($f, $e->getMessage());
            }
        }
    }

    public function testHeadersCannotInjectLines(): void
    {
        $o = PreloadOptions::crawl(['https://example.com/']);
        foreach ([['X-A', "v\r\nX-B: 1"], ['Bad Name', 'v'], ['', 'v'], ['X:Y', 'v']] as [$n, $v]) {
            try {
                $o->withHeader($n, $v);
                self::fail("accepted header $n");
            } catch (InvalidInputException $e) {
                self::assertStringNotContainsString("\n", $e->getMessage());
            }
        }
    }

    public function testRelativeStartUrlIsRefused(): void
    {
        $this->expectException(InvalidInputException::class);
        PreloadOptions::crawl(['https://example.com/', 'about/']);
    }
}
