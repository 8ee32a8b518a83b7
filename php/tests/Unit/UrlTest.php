<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\Exception\CacheClientException;
use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\Url;
use PHPUnit\Framework\TestCase;

final class UrlTest extends TestCase
{
    public function testKeepsTheBytesOfAbsoluteUrls(): void
    {
        foreach ([
            'https://example.com/',
            'http://127.0.0.1:8080/%e6%b0%b4/',
            'http://example.com/%E6%B0%B4/?a=1&b=%2f',
            'https://[::1]:8443/x',
        ] as $u) {
            self::assertSame($u, Url::absolute($u));
        }
    }

    /** @return array<string,array{string,string}> */
    public function badUrls(): array
    {
        return [
            'relative' => ['/hello/', 'not an absolute http(s) URL'],
            'scheme-relative' => ['//example.com/', 'not an absolute http(s) URL'],
            'ftp' => ['ftp://example.com/', 'not an absolute http(s) URL'],
            'option-like' => ['--output-document=/etc/passwd', 'not an absolute http(s) URL'],
            'empty' => ['', 'is empty'],
            'no host' => ['http:///x', 'has no host'],
            'space' => ['http://example.com/a b', 'whitespace'],
            'newline' => ["http://example.com/\nX-Injected: 1", 'control'],
            'raw utf-8' => ['http://example.com/水', 'non-ASCII'],
            'user info' => ['http://user:pw@example.com/', 'user info'],
            'fragment' => ['http://example.com/#top', 'fragment'],
            'bad host' => ['http://exa_mple.com/', 'invalid host'],
        ];
    }

    /** @dataProvider badUrls */
    public function testRefusesWithAOneLineMessage(string $url, string $why): void
    {
        try {
            Url::absolute($url);
            self::fail("accepted $url");
        } catch (InvalidInputException $e) {
            self::assertInstanceOf(CacheClientException::class, $e);
            self::assertStringContainsString($why, $e->getMessage());
            self::assertStringNotContainsString("\n", $e->getMessage());
        }
    }

    public function testOrigin(): void
    {
        self::assertSame('https://example.com', Url::origin('HTTPS://Example.COM/a/b?c'));
        self::assertSame('http://127.0.0.1:8080', Url::origin('http://127.0.0.1:8080/x'));
    }

    public function testEmptyListIsRefused(): void
    {
        $this->expectException(InvalidInputException::class);
        Url::absoluteList([]);
    }
}
