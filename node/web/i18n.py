"""The page texts in English and Chinese (zh-CN): one dict, keys used by the templates.

The language comes from the ``sm_lang`` cookie (the switch in the page header) or else from the
browser's Accept-Language; Chinese is the default.  A test checks both languages have every key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .texts_features import COURSE_TEXTS, FEATURE_TEXTS

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"

# key: (English, 简体中文)
TEXTS: dict[str, tuple[str, str]] = {
    "site": ("Teaching library", "教学资源库"),
    "skip": ("Skip to content", "跳到正文"),
    "nav_search": ("Search", "搜索"),
    "nav_requests": ("Requests", "资源需求"),
    "nav_publish": ("Publish", "发布资源"),
    "nav_login": ("Sign in", "登录"),
    "nav_logout": ("Sign out", "退出"),
    "signed_in_as": ("Signed in as {name}", "已登录：{name}"),
    "language": ("Language", "语言"),
    "search_label": ("Search words", "搜索关键词"),
    "search_button": ("Search", "搜索"),
    "filter_subject": ("Subject", "学科"),
    "filter_level": ("Grade level", "学段"),
    "filter_language": ("Language", "语言"),
    "filter_type": ("Type", "类型"),
    "filter_school": ("School", "学校"),
    "filter_license": ("License", "许可协议"),
    "any": ("Any", "全部"),
    "results": ("Results", "搜索结果"),
    "no_results": ("Nothing found. Try fewer words or ask the community on the Requests page.",
                   "没有找到。请减少关键词，或在“资源需求”页面向大家求助。"),
    "prev_page": ("Previous page", "上一页"),
    "next_page": ("Next page", "下一页"),
    "page_n": ("Page {n}", "第 {n} 页"),
    "version": ("Version", "版本"),
    "updated": ("Updated", "更新于"),
    "by_school": ("School", "学校"),
    "creator": ("Teacher", "教师"),
    "description": ("Description", "简介"),
    "keywords": ("Keywords", "关键词"),
    "time_required": ("Time required", "所需时间"),
    "files": ("Files", "文件"),
    "download": ("Download", "下载"),
    "download_zip": ("Download everything (zip)", "全部下载（zip）"),
    "zip_renamed": ("In the zip, {n} file name(s) are changed so that Windows and USB sticks "
                    "can hold them (the list is in renamed-files.txt inside).",
                    "为了能在 Windows 电脑和 U 盘上使用，压缩包里有 {n} 个文件名已更改"
                    "（清单见其中的 renamed-files.txt）。"),
    "open": ("Open", "打开"),
    "preview": ("Preview", "预览"),
    "no_preview": ("No preview for this kind of file.", "此类文件无法预览。"),
    "local_yes": ("This school's node has a copy of this resource.", "本校节点已保存此资源。"),
    "local_no": ("This resource is not on this node yet.", "此资源尚未保存到本校节点。"),
    "holders": ("Schools with a copy", "保存此资源的学校"),
    "holders_loading": ("Looking for schools that hold a copy…", "正在查找保存此资源的学校…"),
    "holders_none": ("No school with a copy is known right now.", "目前未找到保存此资源的学校。"),
    "fetch": ("Fetch from other schools", "从其他学校获取"),
    "fetch_progress": ("Fetching", "正在获取"),
    "fetch_done": ("Fetched. Reload the page.", "获取完成，请刷新页面。"),
    "fetch_failed_short": ("Fetch failed", "获取失败"),
    "versions": ("Versions", "版本历史"),
    "signature": ("Signature", "签名"),
    "valid": ("valid", "有效"),          # library.show's signature status
    "INVALID": ("INVALID", "无效"),
    "lineage": ("Lineage", "改编关系"),
    "based_on": ("Based on", "改编自"),
    "adapted_as": ("Adapted as", "被改编为"),
    "unknown_resource": ("(not in this library)", "（本库中没有）"),
    "adapt": ("Adapt this resource", "改编此资源"),
    "tools_link": ("Text tools", "文本工具"),
    "tools_title": ("Text tools: {path}", "文本工具：{path}"),
    "tools_note": ("Drafts made on this node, for you to check before you publish an "
                   "adaptation. Nothing is published or sent anywhere.",
                   "在本节点上生成的草稿，请检查后再发布改编版本。不会发布或发送到任何地方。"),
    "reading_hint": ("Reading difficulty (a hint)", "阅读难度（仅供参考）"),
    "reading_grade": ("{n} Chinese characters ({d} different): most are among the characters "
                      "expected by the end of grade {grade}.",
                      "共 {n} 个汉字（{d} 个不同）：大部分属于 {grade} 年级结束前应认识的字。"),
    "reading_beyond": ("{n} Chinese characters ({d} different): many are beyond the 3,500 "
                       "characters expected by the end of grade 9.",
                       "共 {n} 个汉字（{d} 个不同）：许多超出九年级结束前应认识的 3500 个字。"),
    "reading_none": ("No Chinese characters in this file.", "此文件中没有汉字。"),
    "reading_method": ("Estimated from how common each character is, against the character "
                       "counts of the curriculum standard (1,600 by grade 2, 2,500 by grade 4, "
                       "3,000 by grade 6, 3,500 by grade 9).",
                       "按每个字的常用程度估计，对照课程标准的识字量（二年级 1600、四年级 2500、"
                       "六年级 3000、九年级 3500）。"),
    "rare_chars": ("Less common characters (to annotate or explain)",
                   "较少见的字（可加注音或讲解）"),
    "keyword_suggestions": ("Suggested keywords", "建议关键词"),
    "drafts": ("Drafts to download", "下载草稿"),
    "pinyin.html": ("Pinyin above the characters (web page)", "汉字上方注拼音（网页）"),
    "pinyin.docx": ("Pinyin after each character (Word)", "每个字后注拼音（Word）"),
    "traditional": ("Traditional characters", "转为繁体字"),
    "simplified": ("Simplified characters", "转为简体字"),
    "adapt_with_draft": ("Adapt with this draft", "用此草稿改编"),
    "records_tool": ("This adaptation will record that its files were made with the text tool "
                     "“{tool}” (name, version and a hash of its instructions).",
                     "此改编将记录其文件由文本工具“{tool}”生成（名称、版本和指令的哈希值）。"),
    "made_with": ("Made with", "制作工具"),
    "instructions_hash": ("instructions SHA-256", "指令 SHA-256"),
    "adapt_with_keywords": ("Adapt this resource with these keywords",
                            "用这些关键词改编此资源"),
    "bad_tool": ("There is no such tool.", "没有这个工具。"),
    "tool_cannot_read": ("The text tools cannot read this file (UTF-8 text or Word .docx "
                         "only).", "文本工具无法读取此文件（仅支持 UTF-8 文本或 Word .docx）。"),
    "retracted": ("Retracted by its school", "已被发布学校撤回"),
    "fulfils": ("Answers requests", "满足的需求"),
    "feedback": ("Feedback from teachers", "教师反馈"),
    "no_feedback": ("No feedback yet.", "暂无反馈。"),
    "avg_rating": ("Average rating {avg} of 5, used in class {n} times",
                   "平均评分 {avg}/5，课堂使用 {n} 次"),
    "used_in_class": ("Used in class", "已在课堂使用"),
    "not_used": ("Not used in class", "未在课堂使用"),
    "rating": ("Rating (1-5)", "评分（1-5）"),
    "comment": ("Comment", "评语"),
    "give_feedback": ("Tell the author how it went", "告诉作者使用效果"),
    "send": ("Send", "提交"),
    "login_to_act": ("Sign in to publish, give feedback or make requests.",
                     "登录后可发布资源、反馈和提出需求。"),
    "login_title": ("Teacher sign-in", "教师登录"),
    "name": ("Name", "姓名"),
    "password": ("Password", "密码"),
    "bad_login": ("Wrong name or password.", "姓名或密码错误。"),
    "too_many": ("Too many failed sign-ins from this computer. Try again in {seconds} seconds.",
                 "这台电脑登录失败次数过多，请 {seconds} 秒后再试。"),
    "publish_title": ("Publish a resource", "发布资源"),
    "adapt_title": ("Adapt: {title}", "改编：{title}"),
    "choose_files": ("Files (one or more)", "文件（可多选）"),
    "title": ("Title", "标题"),
    "subjects_hint": ("Subjects, separated by commas", "学科，用逗号分隔"),
    "keywords_hint": ("Keywords, separated by commas", "关键词，用逗号分隔"),
    "time_hint": ("e.g. PT40M for 40 minutes", "例如 PT40M 表示 40 分钟"),
    "supply": ("Supply model", "供给方式"),
    "classroom": ("Classroom form", "课堂形式"),
    "fulfils_request": ("This answers the request", "此资源满足需求"),
    "none": ("None", "无"),
    "publish_button": ("Publish as {school}", "以{school}的名义发布"),
    "bad_meta": ("Please check the form: {detail}", "请检查表单：{detail}"),
    "no_files": ("Choose at least one file.", "请至少选择一个文件。"),
    "bad_filename": ("This file name is not allowed: {detail}", "不允许的文件名：{detail}"),
    "bad_upload": ("The upload could not be read: {detail}", "无法读取上传内容：{detail}"),
    "too_big": ("The upload is larger than this node accepts ({detail} at most).",
                "上传内容超过本节点的大小限制（最多 {detail}）。"),
    "disk_low": ("The school computer's disk is nearly full: it fetches and seeds nothing new "
                 "until the administrator frees some space.",
                 "学校电脑的磁盘空间不足：在管理员清理空间之前，不再获取或分享新的资源。"),
    "disk_full": ("The school computer's disk is full, so nothing was published. Ask the "
                  "administrator to free some space, then try again.",
                  "学校电脑的磁盘已满，未发布任何内容。请联系管理员清理空间后重试。"),
    "requests_title": ("Requests board", "资源需求"),
    "requests_intro": ("Ask other schools for material you cannot find.",
                       "找不到的资源，可以在这里请其他学校帮忙。"),
    "no_requests": ("No requests yet.", "暂无需求。"),
    "nav_community": ("Community", "结对社区"),
    "community_title": ("Our paired-assistance community", "我们的结对帮扶社区"),
    "community_none": ("This school is not in a community yet. The node operator joins one "
                       "with an invite code: schoolmesh community join CODE",
                       "本校尚未加入社区。管理员可用邀请码加入：schoolmesh community join 邀请码"),
    "community_linked_title": ("Linked community (catalog only)", "联结的社区（仅目录）"),
    "community_our_role": ("This school: {role}, {status}", "本校：{role}，{status}"),
    "community_members": ("Schools", "成员学校"),
    "role_member": ("member school", "成员校"),
    "role_demonstration": ("demonstration school", "示范校"),
    "status_active": ("active", "有效"),
    "status_expired": ("expired", "已过期"),
    "status_revoked": ("removed", "已移除"),
    "this_school": ("this school", "本校"),
    "community_kept": ("Kept here for the community: {pins} resources, {size}",
                       "本校为社区保存：{pins} 个资源，{size}"),
    "community_subscriptions": ("Fetched automatically", "自动获取"),
    "any_value": ("any", "不限"),
    "new_request": ("New request", "提出需求"),
    "request_description": ("What do you need?", "需要什么资源？"),
    "fulfilled_by": ("Answered by", "已由以下资源满足"),
    "answer_request": ("Publish a resource for this", "为此发布资源"),
    "request_failed": ("The request was not saved: {detail}", "需求未保存：{detail}"),
    "error_title": ("Something is not right", "出现问题"),
    "back_home": ("Back to search", "返回搜索"),
    "not_found": ("There is no such page.", "没有这个页面。"),
    "no_resource": ("There is no such resource in this library.", "本库中没有这个资源。"),
    "no_file": ("There is no such file in this resource.", "此资源中没有这个文件。"),
    "not_local": ("This file is not on this node yet; fetch the resource first.",
                  "此文件尚未保存到本节点，请先获取该资源。"),
    "bad_csrf": ("The form has expired or did not come from this page. Reload and try again.",
                 "表单已过期或来源不正确，请刷新后重试。"),
    "bad_search": ("The search could not be understood.", "无法理解此搜索条件。"),
    "bad_feedback": ("Feedback needs a rating from 1 to 5 (and a comment of at most 500 "
                     "characters).", "反馈需要 1 到 5 的评分（评语最多 500 字）。"),
    "fetch_failed": ("Could not start fetching: {error}", "无法开始获取：{error}"),
    "footer": ("Works without internet: everything is served by this school's node.",
               "无需互联网：所有内容均由本校节点提供。"),
    "where_link": ("Where to open this library (a page to print)", "资源库地址（可打印）"),
    "where_title": ("Open the teaching library", "打开教学资源库"),
    "where_scan": ("Scan the code with a phone camera, or type the address into a browser on "
                   "the school network.",
                   "用手机相机扫描二维码，或在校园网内的浏览器中输入下面的地址。"),
    "where_no_account": ("Anyone on the school network can search and download; teachers sign "
                         "in to publish.",
                         "校园网内任何人都可以搜索和下载；教师登录后可以发布资源。"),
    "where_print": ("Print this page for the staff room (Ctrl+P).",
                    "可打印本页张贴在教师办公室（Ctrl+P）。"),
    "yes": ("Yes", "是"),
    "no": ("No", "否"),
}

# The operator's pages (node/web/operate.py).
TEXTS.update({
    "nav_operator": ("Node", "节点管理"),
    "operators_only": ("Only an operator account may open this page. Sign in as an operator "
                       "(schoolmesh teacher add NAME --role operator).",
                       "只有管理员账号可以打开此页面。请用管理员账号登录"
                       "（schoolmesh teacher add 名字 --role operator）。"),
    "op_failed": ("Could not do that: {error}", "操作未完成：{error}"),
    "op_status": ("Node status", "节点状态"),
    "op_transfers": ("Transfers", "传输任务"),
    "op_storage": ("Storage", "存储空间"),
    "op_accounts": ("Accounts", "账号管理"),
    "op_school_name": ("School", "学校"),
    "op_school_id": ("School id", "学校标识"),
    "op_web_urls": ("Web library", "资源库网址"),
    "op_listen": ("Listening on", "监听地址"),
    "op_following": ("Schools followed", "关注的学校"),
    "op_feed_seq": ("Own catalog entries", "本校目录条目"),
    "op_peers": ("Connected schools", "已连接的学校"),
    "op_no_peers": ("No school is connected now.", "当前没有连接任何学校。"),
    "op_peer": ("School id", "学校标识"),
    "op_peer_address": ("Connection address", "连接地址"),
    "op_peer_lan": ("Counts as LAN", "算作局域网"),
    "op_traffic": ("Traffic since start", "启动以来的流量"),
    "op_traffic_note": ("Bytes per protocol; 'transport' is encryption and framing, 'total' "
                        "what crossed the network.",
                        "按协议统计的字节数；transport 为加密和分帧开销，total 为网络总流量。"),
    "op_protocol": ("Protocol", "协议"),
    "op_sent": ("Sent", "发送"),
    "op_received": ("Received", "接收"),
    "op_target": ("What", "内容"),
    "op_state": ("State", "状态"),
    "op_progress": ("Progress", "进度"),
    "op_actions": ("Actions", "操作"),
    "op_pause": ("Pause", "暂停"),
    "op_resume": ("Resume", "继续"),
    "op_cancel": ("Cancel", "取消"),
    "op_no_transfers": ("No transfers.", "没有传输任务。"),
    "tstate_queued": ("queued", "排队中"),
    "tstate_running": ("running", "传输中"),
    "tstate_paused": ("paused", "已暂停"),
    "tstate_waiting": ("waiting for a school that has it", "等待有此资源的学校"),
    "tstate_done": ("done", "已完成"),
    "tstate_failed": ("failed", "失败"),
    "tstate_cancelled": ("cancelled", "已取消"),
    "op_disk_used": ("Disk used", "磁盘已用"),
    "op_disk_free": ("Disk free", "磁盘可用"),
    "op_disk_reserve": ("Kept free", "保留空间"),
    "op_seed_quota": ("Quota for community copies", "社区副本配额"),
    "op_pins_by_reason": ("What is kept, and why", "保存的内容及原因"),
    "op_pins_recent": ("Most recent", "最近保存"),
    "op_pins_more": ("Only the most recent 200 are listed; the totals above count all.",
                     "仅列出最近 200 项；上方合计包含全部。"),
    "op_no_pins": ("Nothing is kept yet.", "尚未保存任何内容。"),
    "op_reason": ("Reason", "原因"),
    "op_pins": ("Items", "项数"),
    "op_size": ("Size", "大小"),
    "op_resource": ("Resource", "资源"),
    "pin_own": ("published here", "本校发布"),
    "pin_bundle": ("from a USB bundle", "来自 U 盘资源包"),
    "pin_user": ("fetched on request", "按需获取"),
    "pin_community": ("kept for the community", "为社区保存"),
    "pin_subscription": ("automatic subscription", "自动订阅"),
    "op_account": ("Name", "名字"),
    "op_role": ("Role", "角色"),
    "acct_teacher": ("teacher", "教师"),
    "acct_operator": ("operator", "管理员"),
    "op_password": ("Password (8 characters or more)", "密码（至少 8 个字符）"),
    "op_new_password": ("New password", "新密码"),
    "op_set_password": ("Reset password", "重置密码"),
    "op_remove": ("Remove", "删除"),
    "op_add_account": ("Add an account", "添加账号"),
    "op_add": ("Add", "添加"),
    "op_added": ("Account {name} added.", "已添加账号 {name}。"),
    "op_password_set": ("New password for {name}; signed out everywhere.",
                        "已为 {name} 设置新密码，并已在所有设备上退出登录。"),
    "op_removed": ("Account {name} removed.", "已删除账号 {name}。"),
    # limits and the month's traffic
    "op_limits": ("Limits and traffic", "限速与流量"),
    "op_limits_now": ("Settings", "当前设置"),
    "op_up": ("Upload limit", "上传限速"),
    "op_down": ("Download limit", "下载限速"),
    "op_schedule": ("Time-of-day windows", "分时段限速"),
    "op_budget": ("Monthly budget", "每月流量额度"),
    "op_lan_unlimited": ("School LAN not limited", "校园局域网不限速"),
    "op_unlimited": ("unlimited", "不限"),
    "op_none": ("none", "无"),
    "op_month_traffic": ("Traffic in {month}", "{month} 的流量"),
    "op_month_used": ("Used this month: {used} of {budget} ({percent}%).",
                      "本月已用 {used}，额度 {budget}（{percent}%）。"),
    "op_month_used_nobudget": ("Used this month: {used} (no monthly budget set).",
                               "本月已用 {used}（未设每月额度）。"),
    "op_month_note": ("Counted: traffic with schools outside the school LAN (what the budget "
                      "counts). MB = 1,000,000 bytes.",
                      "统计的是与校园局域网以外学校之间的流量（即计入额度的流量）。"
                      "MB = 1,000,000 字节。"),
    "op_unknown_days": ("{size} of this month was counted before daily counts were kept.",
                        "本月有 {size} 是在开始按天统计之前计入的。"),
    "op_chart_daily": ("Traffic per day, {month} (MB)", "{month} 每日流量（MB）"),
    "op_chart_month": ("Used so far in {month}, against the budget (MB)",
                       "{month} 累计用量与额度（MB）"),
    "op_used_so_far": ("Used so far", "累计用量"),
    "op_day": ("Day", "日期"),
    "op_no_traffic": ("No traffic counted this month yet.", "本月尚无流量记录。"),
    "op_change_limits": ("Change", "修改设置"),
    "op_limits_help": ("Leave a field empty to keep its value. Rates: 10M or 10Mbps "
                       "(megabits per second, as lines are sold), 512k, 2MB/s (bytes), "
                       "unlimited. Budget: 20GB (G = 10^9 bytes), 20GiB (2^30), none.",
                       "留空则保持原值。速率：10M 或 10Mbps（兆比特每秒，即宽带标称速率）、"
                       "512k、2MB/s（字节）、unlimited（不限）。额度：20GB（G = 10^9 字节）、"
                       "20GiB（2^30）、none（无）。"),
    "op_save": ("Save", "保存"),
    "op_limits_saved": ("Saved; the running node applies it within a few seconds.",
                        "已保存，运行中的节点几秒内生效。"),
    # communities
    "op_communities": ("Communities", "协作社区"),
    "op_no_communities": ("This school is in no community yet.", "本校尚未加入任何社区。"),
    "op_community_name": ("Name", "名称"),
    "op_community_relation": ("Relation", "关系"),
    "op_members_active": ("Active schools", "在册学校"),
    "op_create_community": ("Found a community (this school as its demonstration school)",
                            "创建社区（本校为示范校）"),
    "op_community_description": ("What it is for (optional)", "社区说明（可选）"),
    "op_create": ("Create", "创建"),
    "op_community_id": ("Community id", "社区标识"),
    "op_members": ("Schools", "成员学校"),
    "op_member_status": ("Status", "状态"),
    "op_this_school": ("this school", "本校"),
    "op_remove_school": ("Remove", "移除"),
    "op_remove_reason": ("Reason (optional)", "原因（可选）"),
    "op_removed_school": ("School {name} removed; its later resources are no longer "
                          "replicated or kept for the community.",
                          "已移除学校 {name}，其之后发布的资源不再同步或为社区保存。"),
    "op_invite": ("Invite a school", "邀请学校"),
    "op_invite_role": ("The school joins as", "加入身份"),
    "op_invite_expires": ("Valid for", "有效期"),
    "op_make_invite": ("Make an invite code", "生成邀请码"),
    "op_invite_made": ("One-time invite code for a {role} school, valid until {expires}. "
                       "The other school scans the code or types it: schoolmesh community "
                       "join CODE. It is shown only now.",
                       "这是一次性邀请码（{role}），有效期至 {expires}。对方学校扫描二维码或"
                       "输入邀请码：schoolmesh community join 邀请码。邀请码只显示这一次。"),
    "op_not_issuer": ("Only the community's demonstration schools invite and remove schools.",
                      "只有社区的示范校可以邀请或移除学校。"),
    "mstatus_active": ("active", "在册"),
    "mstatus_revoked": ("removed", "已移除"),
    "mstatus_expired": ("expired", "已过期"),
    "mrole_member": ("member school", "成员校"),
    "mrole_demonstration": ("demonstration school", "示范校"),
    "rel_member": ("member", "成员"),
    "rel_linked": ("linked community", "联合社区"),
    "ttl_1d": ("1 day", "1 天"), "ttl_7d": ("7 days", "7 天"), "ttl_14d": ("14 days", "14 天"),
    "ttl_30d": ("30 days", "30 天"),
    # USB
    "op_usb": ("USB drive", "U 盘"),
    "op_usb_drives": ("Drives found", "找到的磁盘"),
    "op_usb_no_drives": ("No USB drive is mounted. Plug one in (most desktops mount it under "
                         "/media), or type the folder below.",
                         "没有找到已挂载的 U 盘。请插入 U 盘（一般挂载在 /media 下），或在下面输入"
                         "文件夹路径。"),
    "op_usb_removable": ("removable", "可移动"),
    "op_usb_use": ("Use this drive", "使用此磁盘"),
    "op_usb_folder": ("Folder on the drive", "U 盘上的文件夹"),
    "op_usb_open": ("Open", "打开"),
    "op_usb_chosen": ("Folder: {folder}", "文件夹：{folder}"),
    "op_usb_export": ("Copy the library to the drive", "把资源库复制到 U 盘"),
    "op_usb_export_help": ("Writes a bundle another school imports without network: "
                           "everything this library holds, or one community's schools.",
                           "生成资源包，其他学校无需联网即可导入：可包含本资源库的全部内容，或某个"
                           "社区各学校的内容。"),
    "op_usb_file_name": ("File name", "文件名"),
    "op_usb_max_size": ("Split into parts of at most (optional; 4000M for FAT32 drives)",
                        "分卷大小上限（可选；FAT32 格式的 U 盘填 4000M）"),
    "op_usb_everything": ("Everything", "全部内容"),
    "op_usb_what": ("What", "内容"),
    "op_usb_start_export": ("Export", "导出"),
    "op_usb_import": ("Bring resources in from the drive", "从 U 盘导入资源"),
    "op_usb_no_files": ("No bundle (.car file) in this folder.", "此文件夹中没有资源包（.car 文件）。"),
    "op_usb_start_import": ("Import the chosen files", "导入所选文件"),
    "op_usb_jobs": ("Recent copies", "最近的复制任务"),
    "op_usb_job": ("USB job {id}", "U 盘任务 {id}"),
    "job_export": ("export", "导出"),
    "job_import": ("import", "导入"),
    "jstate_running": ("running", "进行中"),
    "jstate_done": ("done", "已完成"),
    "jstate_failed": ("failed", "失败"),
    "jphase_checking": ("checking the files", "正在检查文件"),
    "jphase_exporting": ("writing the bundle", "正在写入资源包"),
    "jphase_importing": ("importing", "正在导入"),
    "op_usb_refresh": ("This page refreshes itself every 2 seconds until the job ends.",
                       "任务结束前，本页每 2 秒自动刷新。"),
    "op_usb_exported": ("Written: {files} ({resources} resources). You can unplug the drive "
                        "after your computer says it is safe to remove.",
                        "已写入：{files}（{resources} 个资源）。请在电脑提示可以安全移除后再拔出 U 盘。"),
    "op_usb_imported": ("Imported: {blocks} blocks ({size}), {entries} catalog entries; "
                        "{complete} resources complete, {incomplete} need other parts.",
                        "已导入：{blocks} 个数据块（{size}），{entries} 条目录条目；"
                        "{complete} 个资源完整，{incomplete} 个还需要其他分卷。"),
    "op_usb_invalid": ("Problems found (the rest was imported):", "发现问题（其余内容已导入）："),
    "op_usb_back": ("Back to the USB page", "返回 U 盘页面"),
    "op_by_protocol": ("What the traffic was for, this month", "本月流量用途"),
    "op_by_protocol_note": ("Every connection's bytes, school LAN included, by what they "
                            "carried.", "所有连接的字节数（包括校园局域网），按用途统计。"),
    "op_chart_protocols": ("Traffic per day by use, {month} (MB, LAN included)",
                           "{month} 每日流量按用途（MB，含局域网）"),
    "op_other": ("other", "其他"),
    "proto_bitswap": ("resource content", "资源内容"),
    "proto_feed": ("catalog sync", "目录同步"),
    "proto_gossip": ("update notices", "更新通知"),
    "proto_dht": ("finding who has a resource", "查找资源位置"),
    "proto_upkeep": ("connection upkeep", "连接维护"),
    "proto_relay": ("relaying for member schools", "为成员校中继"),
    "proto_community": ("joining communities", "加入社区"),
    "proto_negotiation": ("choosing a protocol", "协议协商"),
})

# The texts of the teacher features (my resources, previews, studios, courses, the report):
# node/web/texts_features.py.
TEXTS.update(FEATURE_TEXTS)

# libp2p protocol ids (prefixes) in plain words (the operator's traffic by use)
PROTOCOL_KEYS = (("/ipfs/bitswap/", "proto_bitswap"), ("/schoolmesh/feed/", "proto_feed"),
                 ("/schoolmesh/community/1", "proto_community"),
                 ("/schoolmesh/", "proto_gossip"), ("/meshsub/", "proto_gossip"),
                 ("/floodsub/", "proto_gossip"), ("/ipfs/kad/", "proto_dht"),
                 ("/ipfs/id/", "proto_upkeep"), ("/ipfs/ping/", "proto_upkeep"),
                 ("/libp2p/circuit/", "proto_relay"), ("negotiation", "proto_negotiation"))


def protocol_key(protocol: str) -> str | None:
    """The text key of a protocol's use (None: no plain name, show the id)."""
    return next((key for prefix, key in PROTOCOL_KEYS if protocol.startswith(prefix)), None)
# The AI assistant (node/web/assist.py) and subject suggestions.
TEXTS.update({
    "filter_ai": ("AI-assisted only", "仅看 AI 辅助改编的资源"),
    "ai_link": ("AI assistant", "AI 助手"),
    "ai_title": ("AI assistant: {title}", "AI 助手：{title}"),
    "ai_note": ("The assistant writes a draft on the school's own AI engine. You check and edit "
                "it; nothing is published until you publish it.",
                "AI 助手在学校自己的 AI 引擎上生成草稿。请您检查并修改；未经您发布，不会公开任何内容。"),
    "ai_task": ("Task", "任务"),
    "ai_task_multigrade": ("Adapt for a multi-grade class", "改编为复式班教学"),
    "ai_task_localise": ("Localise the examples", "把例子改成本地的"),
    "ai_task_simplify": ("Simplify for grade N", "简化到 N 年级"),
    "ai_task_exercises": ("Write exercises with answers", "编写练习题（附答案）"),
    "ai_task_summarise": ("Summarise the video's transcript", "总结视频文字稿"),
    "ai_file": ("From the file", "使用文件"),
    "ai_grade": ("Grade (for “simplify”)", "年级（用于“简化”）"),
    "ai_context": ("Local context (for “localise”): village, crops, places…",
                   "本地情况（用于“本地化”）：村名、农作物、地名……"),
    "ai_start": ("Write the draft", "生成草稿"),
    "ai_streaming": ("The assistant is writing…", "AI 助手正在写……"),
    "ai_open_draft": ("Edit this draft and publish it", "编辑并发布此草稿"),
    "ai_draft_title": ("Draft from the AI assistant", "AI 助手生成的草稿"),
    "ai_draft_note": ("Based on “{title}”, task “{task}”, model {model}. Edit the text; it is "
                      "published as a new resource that records it was AI-assisted and that you "
                      "reviewed it.",
                      "基于《{title}》，任务“{task}”，模型 {model}。请修改文本；发布后，新资源会记录"
                      "它由 AI 辅助改编、并由您审阅。"),
    "ai_publish": ("Publish as an adaptation", "作为改编资源发布"),
    "ai_discard": ("Discard the draft", "放弃草稿"),
    "ai_made_by": ("AI-assisted adaptation ({model}), reviewed by {teacher}",
                   "由 AI 辅助改编（{model}），{teacher}审阅"),
    "ai_not_configured": ("The AI assistant is not set up on this node. The operator sets it "
                          "with: schoolmesh ai set --endpoint URL --model NAME",
                          "本节点尚未设置 AI 助手。请管理员运行：schoolmesh ai set --endpoint URL "
                          "--model NAME"),
    "ai_bad_config": ("The AI assistant's settings are wrong; ask the operator.",
                      "AI 助手的设置有误，请联系管理员。"),
    "ai_bad_task": ("There is no such task.", "没有这个任务。"),
    "ai_need_context": ("Describe the local context for “localise”.",
                        "“本地化”需要填写本地情况。"),
    "ai_bad_grade": ("Give a grade from 1 to 9 for “simplify”.", "“简化”请填写 1 到 9 年级。"),
    "ai_no_text": ("This resource has no text the assistant can read (or no transcript for "
                   "“summarise”).", "此资源没有 AI 助手能读取的文本（“总结”需要视频文字稿）。"),
    "ai_too_long": ("The text is too long for the assistant: {detail}",
                    "文本太长，AI 助手无法处理：{detail}"),
    "ai_unreachable": ("The AI engine cannot be reached. Is the school PC running it? ({detail})",
                       "无法连接 AI 引擎。学校电脑上的引擎是否在运行？（{detail}）"),
    "ai_timeout": ("The AI engine took too long ({detail}). Try again later or with a shorter "
                   "text.", "AI 引擎响应太慢（{detail}）。请稍后再试，或使用更短的文本。"),
    "ai_engine_error": ("The AI engine refused the request ({detail}).",
                        "AI 引擎拒绝了请求（{detail}）。"),
    "ai_bad_reply": ("The AI engine sent an answer the node cannot read.",
                     "AI 引擎返回的内容无法读取。"),
    "ai_no_draft": ("There is no such draft (or it is another teacher's).",
                    "没有这个草稿（或它属于其他教师）。"),
    "ai_empty": ("The draft is empty.", "草稿是空的。"),
    "suggested_subjects": ("Suggested subjects", "建议的学科"),
})

# Vocabulary labels (values stay the identifiers stored in records).
LABELS: dict[str, tuple[str, str]] = {
    "preschool": ("Preschool", "学前"), "lower-primary": ("Lower primary", "小学低年级"),
    "upper-primary": ("Upper primary", "小学高年级"),
    "lower-secondary": ("Lower secondary", "初中"), "upper-secondary": ("Upper secondary", "高中"),
    "tertiary": ("Tertiary", "高等教育"), "professional": ("Professional", "职业教育"),
    "work-skills": ("Work skills", "劳动技能"), "basic-skills": ("Basic skills", "基础技能"),
    "lesson-plan": ("Lesson plan", "教案"), "lesson": ("Lesson", "课"),
    "worksheet": ("Worksheet", "学习单"), "exercise": ("Exercise", "练习"),
    "courseware": ("Courseware", "课件"), "micro-lecture": ("Micro-lecture", "微课"),
    "media": ("Media", "媒体素材"), "textbook": ("Textbook", "教材"), "book": ("Book", "图书"),
    "tutorial": ("Tutorial", "教程"), "activity": ("Activity", "活动"), "game": ("Game", "游戏"),
    "guide": ("Guide", "指南"), "ai-model": ("AI model", "AI 模型"),
    "government": ("Government", "政府"), "market": ("Market", "市场"),
    "public-welfare": ("Public welfare", "公益"), "school": ("School", "学校"),
    "specialised-delivery": ("Specialised delivery", "专递课堂"),
    "master-teacher": ("Master teacher", "名师课堂"),
    "elite-school": ("Elite school online", "名校网络课堂"),
}


TEXTS.update({
    "filter_grade": ("Grade", "年级"),
    "filter_volume": ("Volume", "册次"),
    "filter_edition": ("Textbook edition", "教材版本"),
    "unit": ("Unit", "单元"),
    "lesson_in_unit": ("Lesson", "课"),
    "part_hint": ("number and title, e.g. “5 Hours, minutes, seconds”",
                  "序号和标题，例如“5 时、分、秒”"),
    "edition_hint": ("as the textbook names itself, e.g. 人教版", "按教材封面填写，例如 人教版"),
    "textbook": ("Textbook", "教材"),
    "original_license": ("Licence of the original", "原作的许可协议"),
    "nd_warning": ("The original “{title}” is licensed “{license}”, which does not allow "
                   "adaptations. Ask its school for permission before you share yours; your "
                   "adaptation will record the original's licence.",
                   "原作“{title}”的许可协议是“{license}”，不允许改编。分享你的改编版之前，请先征得"
                   "原作学校的同意；改编版会记录原作的许可协议。"),
    "time_words_hint": ("in minutes, e.g. 40, or PT1H30M", "分钟数，例如 40；或 PT1H30M"),
})

# Words for values stored as codes (licences, languages, durations, grades, volumes).
LICENSE_WORDS: dict[str, tuple[str, str]] = {
    "CC-BY-4.0": ("Attribution (CC BY 4.0)", "署名"),
    "CC-BY-SA-4.0": ("Attribution-ShareAlike (CC BY-SA 4.0)", "署名-相同方式共享"),
    "CC-BY-NC-4.0": ("Attribution-NonCommercial (CC BY-NC 4.0)", "署名-非商业性使用"),
    "CC-BY-NC-SA-4.0": ("Attribution-NonCommercial-ShareAlike (CC BY-NC-SA 4.0)",
                        "署名-非商业性使用-相同方式共享"),
    "CC-BY-ND-4.0": ("Attribution-NoDerivatives (CC BY-ND 4.0)", "署名-禁止演绎"),
    "CC-BY-NC-ND-4.0": ("Attribution-NonCommercial-NoDerivatives (CC BY-NC-ND 4.0)",
                        "署名-非商业性使用-禁止演绎"),
    "CC0-1.0": ("Public domain dedication (CC0)", "公共领域贡献（CC0）"),
    "CC-PDDC": ("Public domain", "公有领域"),
    "GFDL-1.3-or-later": ("GNU Free Documentation License", "GNU 自由文档许可证"),
    "MIT": ("MIT License", "MIT 许可证"),
    "Apache-2.0": ("Apache License 2.0", "Apache 许可证 2.0"),
    "LicenseRef-All-Rights-Reserved": ("All rights reserved", "保留所有权利"),
}
LANGUAGE_WORDS: dict[str, tuple[str, str]] = {
    "zh": ("Chinese", "中文"), "zh-cn": ("Chinese", "中文"), "zh-hans": ("Chinese", "中文"),
    "zh-tw": ("Chinese (Traditional)", "中文（繁体）"),
    "zh-hk": ("Chinese (Traditional)", "中文（繁体）"),
    "zh-hant": ("Chinese (Traditional)", "中文（繁体）"),
    "en": ("English", "英语"), "bo": ("Tibetan", "藏语"), "ug": ("Uyghur", "维吾尔语"),
    "mn": ("Mongolian", "蒙古语"), "ii": ("Yi", "彝语"), "za": ("Zhuang", "壮语"),
    "ko": ("Korean", "朝鲜语"), "kk": ("Kazakh", "哈萨克语"), "ja": ("Japanese", "日语"),
    "ru": ("Russian", "俄语"), "fr": ("French", "法语"), "de": ("German", "德语"),
    "es": ("Spanish", "西班牙语"), "yue": ("Cantonese", "粤语"),
}
_ZH_DIGITS = "零一二三四五六七八九十"
VOLUME_WORDS: dict[str, tuple[str, str]] = {
    "first": ("Volume 1", "上册"), "second": ("Volume 2", "下册"),
    "single": ("Single volume", "全一册"),
}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class Words:
    """Codes in words, in one language (the templates' ``words``)."""

    def __init__(self, lang: str) -> None:
        self.i = 0 if lang == "en" else 1

    def license(self, code: Any) -> str:
        pair = LICENSE_WORDS.get(code) if isinstance(code, str) else None
        return pair[self.i] if pair else str(code)

    def language(self, tag: Any) -> str:
        if not isinstance(tag, str):
            return str(tag)
        low = tag.lower()
        pair = LANGUAGE_WORDS.get(low) or LANGUAGE_WORDS.get(low.split("-")[0])
        return pair[self.i] if pair else tag

    def duration(self, iso: Any) -> str:
        m = _DURATION.match(iso) if isinstance(iso, str) else None
        if not m or not any(m.groups()):
            return str(iso)
        units = (("day", "days", "天"), ("hour", "hours", "小时"),
                 ("minute", "minutes", "分钟"), ("second", "seconds", "秒"))
        parts = []
        for value, (one, many, zh) in zip(m.groups(), units):
            if value is not None and int(value):
                n = int(value)
                parts.append(f"{n} {zh}" if self.i else f"{n} {one if n == 1 else many}")
        return " ".join(parts) or ("0 分钟" if self.i else "0 minutes")

    def grade(self, g: Any) -> str:
        if type(g) is not int or not 0 <= g <= 12:
            return str(g)
        if g == 0:
            return "学前" if self.i else "Preschool"
        if not self.i:
            return f"Grade {g}"
        if g >= 10:
            return "高" + _ZH_DIGITS[g - 9]
        return _ZH_DIGITS[g] + "年级"

    def volume(self, v: Any) -> str:
        pair = VOLUME_WORDS.get(v) if isinstance(v, str) else None
        return pair[self.i] if pair else str(v)

    def part(self, p: Any, what: str) -> str:
        """A unit or lesson: ``第5单元 时、分、秒`` / ``Unit 5 Hours``."""
        if not isinstance(p, dict):
            return ""
        n, title = p.get("number"), p.get("title")
        if self.i:
            head = f"第{n}{'单元' if what == 'unit' else '课'}" if n is not None else ""
        else:
            head = f"{'Unit' if what == 'unit' else 'Lesson'} {n}" if n is not None else ""
        return " ".join(x for x in (head, title) if x)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the cookie if valid, else the best match of Accept-Language."""
    if cookie in LANGUAGES:
        return cookie
    best, best_q = DEFAULT, -1.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        tag = tag.strip().lower()
        lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang and q > best_q:
            best, best_q = lang, q
    return best


def translator(lang: str) -> Callable[..., str]:
    i = 0 if lang == "en" else 1

    def t(key: str, **fmt: object) -> str:
        pair = TEXTS.get(key) or COURSE_TEXTS.get(key) or LABELS.get(key)
        if pair is None:
            return key
        return pair[i].format(**fmt) if fmt else pair[i]
    return t
