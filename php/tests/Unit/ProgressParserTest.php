<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\ProgressParser;
use PHPUnit\Framework\TestCase;

final class ProgressParserTest extends TestCase
{
    public function testCountsPagesCacheStatusAndErrors(): void
    {
        $log = implode("\n", [
            '{"event":"page","url":"http://s/a/","final_url":"http://s/a/","status":200,"ok":true,"bytes":10,"cache":"MISS"}',
            '{"event":"page","url":"http://s/b/","status":200,"ok":true,"cache":"HIT"}',
            '{"event":"notice","message":"sitemap read"}',
            '{"event":"page","url":"http://s/old/","status":404,"ok":false,"cache":"MISS"}',
            '{"event":"error","url":"http://s/slow/","kind":"timeout","message":"read timed out"}',
            '{"event":"page","url":"http://s/c/","status":200,"ok":true,"cache":null}',
            '{"event":"page","url":"http://s/d/","status":2',
        ]);
        $p = ProgressParser::parse($log);
        self::assertSame(4, $p->pages, 'the half-written last line is not counted');
        self::assertSame(3, $p->ok);
        self::assertSame(1, $p->httpErrors);
        self::assertSame(1, $p->failed);
        self::assertSame(2, $p->misses());
        self::assertSame(1, $p->hits());
        self::assertSame('http://s/c/', $p->lastUrl);
        self::assertFalse($p->finished);
        self::assertSame(['http://s/old/', 'http://s/slow/'], array_column($p->errors, 'url'));
        self::assertSame('read timed out', $p->errors[1]['message']);
    }

    public function testToleratesAddedFieldsAndATypeKey(): void
    {
        $log = '{"type":"page","schema":2,"url":"http://s/","status":200,"cache":{"status":"hit","header":"X-FastCGI-Cache"},"new":[1,2]}' . "\n"
            . '{"type":"summary","pages":1,"ok":1,"elapsed_ms":1500,"cache":{"HIT":1},"whatever":true}' . "\n"
            . "not json at all\n";
        $p = ProgressParser::parse($log);
        self::assertSame(1, $p->pages);
        self::assertSame(1, $p->hits());
        self::assertTrue($p->finished);
        self::assertSame(1.5, $p->elapsed);
        self::assertSame(1, $p->summary['pages']);
        self::assertSame(100.0, $p->percent());
    }

    public function testKeepsOnlyTheLastTwentyErrors(): void
    {
        $lines = [];
        for ($i = 0; $i < 30; $i++) {
            $lines[] = json_encode(['event' => 'page', 'url' => "http://s/$i", 'status' => 500]);
        }
        $p = ProgressParser::parse(implode("\n", $lines));
        self::assertSame(30, $p->httpErrors);
        self::assertCount(20, $p->errors);
        self::assertSame('http://s/29', end($p->errors)['url']);
    }
}
